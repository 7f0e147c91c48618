export * from './runstate.ts';
export * from './system-state.ts';
export * from './cpus.ts';
export * from './requests.ts';
export * from './tcg-rr.ts';
