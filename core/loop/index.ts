export * from './clock.ts';
export * from './timer.ts';
export * from './async.ts';
export * from './source.ts';
export * from './pollfd.ts';
export * from './main-loop.ts';
export * from './drive.ts';
export * from './loop-machine.ts';
