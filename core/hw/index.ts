export * from './serial.ts';
export * from './clint.ts';
export * from './plic.ts';
export * from './sifive-test.ts';
export * from './virtqueue.ts';
export * from './virtio-mmio.ts';
export * from './virtio-blk.ts';
