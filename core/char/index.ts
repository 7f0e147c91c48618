export * from './char.ts';
export * from './char-fe.ts';
export * from './char-io.ts';
export * from './char-registry.ts';
