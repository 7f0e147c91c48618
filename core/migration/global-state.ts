// The "globalstate" section (migration/global_state.c): the run state the source was in when
// it saved, as a NUL-padded 100-byte name, so the destination can resume in the same state.
// savevm stores it before stopping the VM; live migration at completion. The destination runs
// the VM afterwards only if none was received or it says "running" (and it was not -S).
// Invariant: `runstate` always holds a NUL-terminated name (at most 99 bytes).

import { assert } from '../util/index.ts';
import { RUN_STATES, type RunState } from '../system/index.ts';
import { EINVAL } from './errors.ts';
import { latin1Bytes, latin1String } from './qemu-file.ts';
import { type SaveStateEntry, type SaveVMState, vmstateRegister } from './savevm.ts';
import {
  type VMStateDescription, type VMStateStaged, vmstateBuffer, vmstateUint32,
} from './vmstate-types.ts';

export const GLOBAL_STATE_RUNSTATE_SIZE = 100;

/** @qemu migration/global_state.c GlobalState */
export interface GlobalState {
  /** Machine compat store-global-state=off: the section is skipped for running/paused. */
  optional: boolean;
  /** strlen(runstate) + 1, set by pre_save. */
  size: number;
  runstate: Uint8Array;
  /** The run state parsed from a received section. */
  state: RunState | null;
  /** Set when a globalstate section was loaded. */
  received: boolean;
}

export function globalStateCreate(): GlobalState {
  return {
    optional: false, size: 0, runstate: new Uint8Array(GLOBAL_STATE_RUNSTATE_SIZE), state: null,
    received: false,
  };
}

/**
 * Record the current run state for the next save.
 * @qemu global_state_store / global_state_store_running
 */
export function globalStateStore(gs: GlobalState, runstate: RunState): void {
  const b = latin1Bytes(runstate);
  assert(b.length < GLOBAL_STATE_RUNSTATE_SIZE, `run state name ${runstate} too long`);
  gs.runstate.fill(0);
  gs.runstate.set(b);
}

/** Whether the last load brought a globalstate section. @qemu global_state_received */
export function globalStateReceived(gs: GlobalState): boolean {
  return gs.received;
}

/** The received run state. @qemu global_state_get_runstate */
export function globalStateGetRunstate(gs: GlobalState): RunState | null {
  return gs.state;
}

function runstateString(b: Uint8Array): string {
  const nul = b.indexOf(0);
  return latin1String(nul >= 0 ? b.subarray(0, nul) : b);
}

/** @qemu global_state_needed */
function globalStateNeeded(gs: GlobalState): boolean {
  if (!gs.optional) return true;
  const name = runstateString(gs.runstate);
  return name !== 'running' && name !== 'paused';
}

/** @qemu global_state_pre_save */
function globalStatePreSave(gs: GlobalState): number {
  gs.size = runstateString(gs.runstate).length + 1;
  assert(gs.size <= GLOBAL_STATE_RUNSTATE_SIZE, 'global state size');
  return 0;
}

/** @qemu global_state_post_load: the name must be a RunState ("invalid parameter value: %s"). */
function globalStatePostLoad(
  staged: VMStateStaged, _v: number, _live: GlobalState, report: (m: string) => void,
): number {
  staged.received = true;
  const buf = staged.runstate instanceof Uint8Array
    ? staged.runstate
    : new Uint8Array(GLOBAL_STATE_RUNSTATE_SIZE);

  // A malicious stream may fill all 100 bytes: QEMU forces the last one to NUL.
  if (buf.indexOf(0) < 0) buf[GLOBAL_STATE_RUNSTATE_SIZE - 1] = 0;
  const name = runstateString(buf);
  const state = RUN_STATES.find((n) => n === name);
  if (state === undefined) {
    report(`invalid parameter value: ${name}`);
    return -EINVAL;
  }
  staged.state = state;
  return 0;
}

/** @qemu migration/global_state.c vmstate_globalstate (registered with instance 0) */
export const vmstateGlobalState: VMStateDescription<GlobalState> = {
  name: 'globalstate',
  versionId: 1,
  minimumVersionId: 1,
  needed: globalStateNeeded,
  preSave: globalStatePreSave,
  postLoad: globalStatePostLoad,
  fields: [
    vmstateUint32('size', 'size'),
    vmstateBuffer('runstate', 'runstate', GLOBAL_STATE_RUNSTATE_SIZE),
  ],
};

/**
 * Register the globalstate section (instance 0).
 * @qemu migration/global_state.c register_global_state
 */
export function registerGlobalState(sv: SaveVMState, gs: GlobalState): SaveStateEntry {
  return vmstateRegister(sv, 0, vmstateGlobalState, gs);
}
