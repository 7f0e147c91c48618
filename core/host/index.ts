export * from './types.ts';
export * from './errno.ts';
export * from './tty.ts';
export * from './host-clock.ts';
export * from './host-file.ts';
export * from './host-net.ts';
export * from './host-stdio.ts';
export * from './host-io.ts';
