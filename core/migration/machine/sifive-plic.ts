// The "riscv_sifive_plic" section (hw/intc/sifive_plic.c vmstate_sifive_plic, QEMU 7.2
// version 1): source priorities, per-context thresholds (target_priority), the pending and
// claimed bitfields and the per-context enable words, each a uint32 VARRAY whose count is the
// board's (96 sources, 2 contexts per hart, 3 bitfield words). The input line levels detvm keeps
// to re-pend a completed source are not migrated (QEMU has none); the machine's post-load
// recomputes them from the devices that drive the lines.
// Invariant: enable words are flattened context by context, as QEMU's enable[] array is.

import { PLIC_NUM_SOURCES, type PlicDevice } from '../../hw/index.ts';
import { type SaveStateEntry, type SaveVMState, vmstateRegister } from '../savevm.ts';
import { type VMStateDescription, type VMStateStaged, vmstateVarray } from '../vmstate-types.ts';

interface PlicVm {
  numSources: number;
  numAddrs: number;
  bitfieldWords: number;
  numEnables: number;
  sourcePriority: number[];
  targetPriority: number[];
  pending: number[];
  claimed: number[];
  enable: number[];
}

/** Contexts and enable words this machine's PLIC has. */
function plicVmCreate(d: PlicDevice): PlicVm {
  const words = Math.ceil(PLIC_NUM_SOURCES / 32);
  const contexts = d.s.threshold.length;
  return {
    numSources: PLIC_NUM_SOURCES, numAddrs: contexts, bitfieldWords: words,
    numEnables: words * contexts, sourcePriority: new Array<number>(PLIC_NUM_SOURCES).fill(0),
    targetPriority: new Array<number>(contexts).fill(0), pending: new Array<number>(words).fill(0),
    claimed: new Array<number>(words).fill(0), enable: new Array<number>(words * contexts).fill(0),
  };
}

/** @qemu hw/intc/sifive_plic.c vmstate_sifive_plic */
export const vmstateSifivePlic: VMStateDescription<PlicVm> = {
  name: 'riscv_sifive_plic',
  versionId: 1,
  minimumVersionId: 1,
  fields: [
    vmstateVarray('uint32', 'source_priority', 'sourcePriority', 'numSources', 1024),
    vmstateVarray('uint32', 'target_priority', 'targetPriority', 'numAddrs', 32),
    vmstateVarray('uint32', 'pending', 'pending', 'bitfieldWords', 32),
    vmstateVarray('uint32', 'claimed', 'claimed', 'bitfieldWords', 32),
    vmstateVarray('uint32', 'enable', 'enable', 'numEnables', 1024),
  ],
};

function plicPreSave(vm: PlicVm, d: PlicDevice): void {
  const s = d.s;
  for (let i = 0; i < vm.numSources; i++) vm.sourcePriority[i] = s.priority[i]!;
  for (let c = 0; c < vm.numAddrs; c++) vm.targetPriority[c] = s.threshold[c]!;
  for (let w = 0; w < vm.bitfieldWords; w++) {
    vm.pending[w] = s.pending[w]!;
    vm.claimed[w] = s.claimed[w]!;
  }
  for (let c = 0; c < vm.numAddrs; c++) {
    for (let w = 0; w < vm.bitfieldWords; w++) vm.enable[c * vm.bitfieldWords + w] = s.enable[c]![w]!;
  }
}

function plicCommit(vm: PlicVm, d: PlicDevice, staged: VMStateStaged): void {
  const s = d.s;
  const arr = (k: string): number[] => staged[k] as number[];
  arr('sourcePriority').forEach((v, i) => (s.priority[i] = v));
  arr('targetPriority').forEach((v, c) => (s.threshold[c] = v));
  arr('pending').forEach((v, w) => (s.pending[w] = v));
  arr('claimed').forEach((v, w) => (s.claimed[w] = v));
  arr('enable').forEach((v, i) => {
    s.enable[Math.floor(i / vm.bitfieldWords)]![i % vm.bitfieldWords] = v;
  });
}

/**
 * Register the PLIC's "riscv_sifive_plic" section (instance 0).
 * @qemu hw/intc/sifive_plic.c sifive_plic_class_init (dc->vmsd)
 */
export function sifivePlicRegister(sv: SaveVMState, d: PlicDevice): SaveStateEntry {
  const vm = plicVmCreate(d);
  const vmsd: VMStateDescription<PlicVm> = {
    ...vmstateSifivePlic,
    preSave: (v) => {
      plicPreSave(v, d);
      return 0;
    },
  };
  return vmstateRegister(sv, 0, vmsd, vm, { commit: (v, staged) => plicCommit(v, d, staged) });
}
