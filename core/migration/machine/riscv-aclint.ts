// The "riscv_mtimer" section of the virt board's CLINT (hw/intc/riscv_aclint.c
// vmstate_riscv_mtimer, QEMU 7.2 version 1): the per-hart mtimecmp values as a uint64 VARRAY of
// num_harts elements. QEMU 7.2 does not migrate the mtime offset a guest write to mtime creates
// (fixed upstream in 2025 by a version bump); detvm sends it in the subsection
// "riscv_mtimer/time_delta" only when it is non-zero, so ordinary streams keep QEMU's shape and
// a moved mtime still migrates exactly. QEMU re-arms the comparator timers after a load from the
// VIRTUAL time of the load, so an interrupt can come up to a tick (100 ns) later than it would
// have on the source; detvm keeps the guest exact by sending the armed timers' expiries in
// "riscv_mtimer/timers" whenever a re-arm would not reproduce them. The MSWI's msip bits are not
// a section in QEMU either: they live in each hart's mip, and clintPostLoad re-derives them.
// Invariant: timecmp values keep all 64 bits (bigint), as the comparator registers do.

import type { ClintDevice } from '../../hw/index.ts';
import { clintPostLoad, clintTimecmpDeadline } from '../../hw/index.ts';
import { timerExpireTimeNs } from '../../loop/index.ts';
import { EINVAL } from '../errors.ts';
import { type SaveStateEntry, type SaveVMState, vmstateRegister } from '../savevm.ts';
import {
  type VMStateDescription, type VMStateStaged, vmstateArray, vmstateInt64, vmstateVarray,
} from '../vmstate-types.ts';

interface MtimerVm {
  numHarts: number;
  timecmp: bigint[];
  timeDelta: number;
  /** Expiry of each hart's comparator timer (ns of VIRTUAL, -1: not armed). */
  timers: number[];
  /** Whether re-arming after a load would move some timer (set by pre_save). */
  timersMoved: boolean;
}

const vmstateMtimerTimeDelta: VMStateDescription<MtimerVm> = {
  name: 'riscv_mtimer/time_delta',
  versionId: 1,
  minimumVersionId: 1,
  needed: (v) => v.timeDelta !== 0,
  fields: [vmstateInt64('time_delta', 'timeDelta')],
};

/** detvm: the exact timer expiries (see the header). */
function vmstateMtimerTimers(numHarts: number): VMStateDescription<MtimerVm> {
  return {
    name: 'riscv_mtimer/timers',
    versionId: 1,
    minimumVersionId: 1,
    needed: (v) => v.timersMoved,
    fields: [vmstateArray('timer', 'timers', 'timers', numHarts)],
  };
}

/** @qemu hw/intc/riscv_aclint.c vmstate_riscv_mtimer */
export const vmstateRiscvMtimer: VMStateDescription<MtimerVm> = {
  name: 'riscv_mtimer',
  versionId: 1,
  minimumVersionId: 1,
  fields: [vmstateVarray('uint64', 'timecmp', 'timecmp', 'numHarts', 8)],
  subsections: [vmstateMtimerTimeDelta],
  postLoad: (staged: VMStateStaged, _v, live, report) => {
    // The count is not in the stream: it is this machine's, so a stream from a machine with
    // more harts misparses; QEMU has the same limitation (the CPU sections catch it first).
    const n = (staged.timecmp as unknown[] | undefined)?.length ?? 0;
    if (n !== live.numHarts) {
      report(`riscv_mtimer: ${n} comparators for ${live.numHarts} harts`);
      return -EINVAL;
    }
    return 0;
  },
};

/** Apply a staged section and re-arm the comparators (the mtime offset defaults to 0). */
function mtimerCommit(d: ClintDevice, staged: VMStateStaged): void {
  const cmp = staged.timecmp as bigint[];
  for (let h = 0; h < d.cpus.length; h++) {
    const v = BigInt.asUintN(64, cmp[h] ?? 0n);
    d.s.timecmpHi[h] = Number(v >> 32n);
    d.s.timecmpLo[h] = Number(v & 0xffff_ffffn);
  }
  d.s.timeDelta = (staged.timeDelta as number | undefined) ?? 0;
  clintPostLoad(d, (staged.timers as number[] | undefined) ?? null);
}

/**
 * Register the CLINT's "riscv_mtimer" section (instance 0).
 * @qemu hw/intc/riscv_aclint.c riscv_aclint_mtimer_class_init (dc->vmsd)
 */
export function riscvMtimerRegister(sv: SaveVMState, d: ClintDevice): SaveStateEntry {
  const n = d.cpus.length;
  const vm: MtimerVm = {
    numHarts: n, timecmp: d.cpus.map(() => 0n), timeDelta: 0, timers: new Array<number>(n).fill(-1),
    timersMoved: false,
  };
  const vmsd: VMStateDescription<MtimerVm> = {
    ...vmstateRiscvMtimer,
    subsections: [vmstateMtimerTimeDelta, vmstateMtimerTimers(n)],
    preSave: (v) => {
      v.timersMoved = false;
      for (let h = 0; h < n; h++) {
        v.timecmp[h] = (BigInt(d.s.timecmpHi[h]!) << 32n) | BigInt(d.s.timecmpLo[h]!);
        v.timers[h] = timerExpireTimeNs(d.timers[h]!);
        if (v.timers[h] !== clintTimecmpDeadline(d, h)) v.timersMoved = true;
      }
      v.timeDelta = d.s.timeDelta;
      return 0;
    },
  };
  return vmstateRegister(sv, 0, vmsd, vm, { commit: (_v, staged) => mtimerCommit(d, staged) });
}
