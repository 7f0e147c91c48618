// The "timer" section (softmmu/cpu-timers.c vmstate_timers) over detvm's clock state
// (core/loop ClocksState): the tick and VIRTUAL clock offsets, and, when icount is on, the
// icount bias and count. detvm's icount never sleeps (its warp is immediate, like sleep=off)
// and its shift is fixed, so the warp-timer, adjust-timer and shift subsections are never
// sent; they are described so a QEMU stream carrying them still loads (their values are read
// and dropped). Machine-specific: registered by the machine builder with instance 0.
// Invariant: only the four saved ClocksState fields are ever written by a load.

import type { ClocksState } from '../../loop/index.ts';
import type { SaveStateEntry, SaveVMState } from '../savevm.ts';
import { vmstateRegister } from '../savevm.ts';
import {
  type VMStateDescription, type VMStateStaged, vmstateInt16, vmstateInt64, vmstateTimer,
  vmstateUnused,
} from '../vmstate-types.ts';

/** @qemu icount_vmstate_warp_timer (not needed: detvm has no warp timer) */
const vmstateIcountWarpTimer: VMStateDescription<ClocksState> = {
  name: 'timer/icount/warp_timer',
  versionId: 1,
  minimumVersionId: 1,
  needed: () => false,
  fields: [
    vmstateInt64('vm_clock_warp_start', 'vmClockWarpStart'),
    vmstateTimer('icount_warp_timer', 'icountWarpTimer'),
  ],
};

/** @qemu icount_vmstate_adjust_timers (not needed: shift=auto is not supported) */
const vmstateIcountAdjustTimers: VMStateDescription<ClocksState> = {
  name: 'timer/icount/timers',
  versionId: 1,
  minimumVersionId: 1,
  needed: () => false,
  fields: [
    vmstateTimer('icount_rt_timer', 'icountRtTimer'),
    vmstateTimer('icount_vm_timer', 'icountVmTimer'),
  ],
};

/** @qemu icount_vmstate_shift (not needed: the shift is fixed) */
const vmstateIcountShift: VMStateDescription<ClocksState> = {
  name: 'timer/icount/shift',
  versionId: 2,
  minimumVersionId: 2,
  needed: () => false,
  fields: [
    vmstateInt16('icount_time_shift', 'icountTimeShift'),
    vmstateInt64('last_delta', 'lastDelta'),
  ],
};

/** @qemu icount_vmstate_timers */
const vmstateIcountTimers: VMStateDescription<ClocksState> = {
  name: 'timer/icount',
  versionId: 1,
  minimumVersionId: 1,
  needed: (c) => c.icountEnabled,
  fields: [vmstateInt64('qemu_icount_bias', 'icountBiasNs'), vmstateInt64('qemu_icount', 'icount')],
  subsections: [vmstateIcountWarpTimer, vmstateIcountAdjustTimers, vmstateIcountShift],
};

/** @qemu softmmu/cpu-timers.c vmstate_timers */
export const vmstateTimers: VMStateDescription<ClocksState> = {
  name: 'timer',
  versionId: 2,
  minimumVersionId: 1,
  fields: [
    vmstateInt64('cpu_ticks_offset', 'cpuTicksOffset'),
    vmstateUnused(8),
    vmstateInt64('cpu_clock_offset', 'cpuClockOffsetNs', { versionId: 2 }),
  ],
  subsections: [vmstateIcountTimers],
};

const SAVED: ReadonlyArray<keyof ClocksState> = [
  'cpuTicksOffset', 'cpuClockOffsetNs', 'icountBiasNs', 'icount',
];


/** Apply a staged "timer" section: the saved fields only (QEMU-only values are dropped). */
export function cpuTimersCommit(c: ClocksState, staged: VMStateStaged): void {
  for (const k of SAVED) {
    const v = staged[k];
    if (typeof v === 'number') (c as unknown as Record<string, number>)[k] = v;
  }
}

/**
 * Register the "timer" section over the machine's clocks (section idstr "timer", instance 0).
 * Save it while the VM is stopped, when cpuClockOffsetNs holds the frozen VIRTUAL time.
 * @qemu softmmu/cpu-timers.c cpu_timers_init
 */
export function cpuTimersRegister(sv: SaveVMState, clocks: ClocksState): SaveStateEntry {
  return vmstateRegister(sv, 0, vmstateTimers, clocks, { commit: cpuTimersCommit });
}
