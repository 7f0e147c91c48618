// Layer 6: record/replay of everything a run takes from outside its configuration, checkpoints
// and divergence reports, and reverse execution (snapshots, breakpoints, seek). FORMAT.md
// describes the log.

export * from './log-codec.ts';
export * from './log-events.ts';
export * from './log-header.ts';
export * from './log-index.ts';
export * from './state-hash.ts';
export * from './replay-state.ts';
export * from './graph-snapshot.ts';
export * from './record.ts';
export * from './record-io.ts';
export * from './play.ts';
export * from './play-io.ts';
export * from './debugger.ts';
export * from './session.ts';
