export * from './serial.ts';
export * from './clint.ts';
export * from './plic.ts';
export * from './sifive-test.ts';
