// The "cpu_common" and "cpu" sections of a riscv32 hart (cpu.c vmstate_cpu_common, QEMU 7.2
// target/riscv/machine.c vmstate_riscv_cpu v5) over detvm's CpuState. Each hart registers both,
// with instance id = cpu index, in that order. The descriptions read a per-hart view that pre_save
// fills from CpuState: QEMU's field list, names, types and sizes are kept exactly, and the
// registers detvm's M-mode RV32IMA hart does not have are written as the values such a hart holds
// (zeros, misa 0x1101, priv M, QEMU's default interrupt priorities). Loading checks those values
// and rejects what the hart cannot represent with QEMU's *_EQUAL messages ("1101 != 1411ad",
// "Failed to load cpu:env.misa_ext"). mcycle/minstret travel as QEMU's PMU counters 0 and 2:
// value = counter, prev = the hart's instruction count (QEMU reads val + ticks - prev).
// Invariant: load then save of a saved hart gives the same bytes.

import { assert } from '../../util/index.ts';
import { type CpuState, MISA_RV32IMA } from '../../cpu/index.ts';
import { EINVAL } from '../errors.ts';
import { type SaveStateEntry, type SaveVMState, vmstateRegister } from '../savevm.ts';
import {
  type VMStateDescription, type VMStateStaged, vmstateArray, vmstateBool, vmstateInt32,
  vmstateStructArray, vmstateUint32, vmstateUint64, vmstateUint8,
} from '../vmstate-types.ts';

const MSTATUS_MIE = 1 << 3;
const MSTATUS_MPIE = 1 << 7;
const MSTATUS_MPP = 3 << 11;
const MIP_M_MODE = (1 << 3) | (1 << 7) | (1 << 11);
/** @qemu CPU_INTERRUPT_HARD, CPU_INTERRUPT_EXITTB */
const CPU_INTERRUPT_HARD = 0x0002;
const CPU_INTERRUPT_EXITTB = 0x0004;
/** @qemu RV_MAX_MHPMCOUNTERS, RV_MAX_MHPMEVENTS, MAX_RISCV_PMPS, RV_MAX_TRIGGERS */
const RV_MAX_MHPMCOUNTERS = 32;
const RV_MAX_MHPMEVENTS = 32;
const MAX_RISCV_PMPS = 16;
/** @qemu PRIV_VERSION_1_12_0, MXL_RV32, PRV_M */
const PRIV_VERSION_1_12_0 = 2;
const MXL_RV32 = 1;
const PRV_M = 3;
const MISA_EXT = MISA_RV32IMA & 0x03ff_ffff;

/**
 * QEMU 7.2's default interrupt priorities (riscv_cpu_init: miprio = siprio = the AIA default
 * order), as the real stream carries them. detvm's hart has no AIA: the table is constant.
 */
const IPRIO_DEFAULT = Uint8Array.from([
  0xff, 0x14, 0x18, 0x11, 0xff, 0x15, 0x19, 0x12, 0xff, 0x13, 0x17, 0x10, 0x16, 0xff, 0xff, 0xff,
  0x24, 0x21, 0x1e, 0x1b, 0x0e, 0x0b, 0x08, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
  0x25, 0x23, 0x22, 0x20, 0x1f, 0x1d, 0x1c, 0x1a, 0x0f, 0x0d, 0x0c, 0x0a, 0x09, 0x07, 0x06, 0x04,
  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
]);

/** @qemu PMUCTRState (rv32: the 64-bit counter as two halves) */
interface PmuCtrVm {
  val: number;
  valh: number;
  prev: number;
  prevh: number;
  started: boolean;
}

/** cpu_common of one hart. @qemu CPUState (the migrated part) */
interface CpuCommonVm {
  halted: number;
  interruptRequest: number;
  exceptionIndex: number;
}

/** What the "cpu" section describes, refreshed from CpuState by pre_save. */
interface RiscvCpuVm {
  gpr: Uint32Array;
  fpr: number[];
  miprio: Uint8Array;
  siprio: Uint8Array;
  pc: number;
  loadRes: number;
  loadVal: number;
  frm: number;
  badaddr: number;
  guestPhysFaultAddr: number;
  privVer: number;
  vextVer: number;
  misaMxl: number;
  misaExt: number;
  misaMxlMax: number;
  misaExtMask: number;
  features: number;
  priv: number;
  virt: number;
  resetvec: number;
  mhartid: number;
  mstatus: number;
  mip: number;
  miclaim: number;
  mie: number;
  mideleg: number;
  satp: number;
  stval: number;
  medeleg: number;
  stvec: number;
  sepc: number;
  scause: number;
  mtvec: number;
  mepc: number;
  mcause: number;
  mtval: number;
  miselect: number;
  siselect: number;
  scounteren: number;
  mcounteren: number;
  mcountinhibit: number;
  pmuCtrs: PmuCtrVm[];
  mhpmeventVal: number[];
  mhpmeventhVal: number[];
  sscratch: number;
  mscratch: number;
  mfromhost: number;
  mtohost: number;
  stimecmp: number;
  menvcfg: number;
  senvcfg: number;
  henvcfg: number;
}

/**
 * Fields whose value is fixed by the hart detvm models: [property, QEMU field, value]. A stream
 * that brings another value describes a hart detvm cannot run, and is rejected.
 */
const FIXED: ReadonlyArray<readonly [keyof RiscvCpuVm, string, number]> = [
  ['frm', 'env.frm', 0], ['privVer', 'env.priv_ver', PRIV_VERSION_1_12_0],
  ['vextVer', 'env.vext_ver', 0], ['misaMxl', 'env.misa_mxl', MXL_RV32],
  ['misaExt', 'env.misa_ext', MISA_EXT], ['misaMxlMax', 'env.misa_mxl_max', MXL_RV32],
  ['misaExtMask', 'env.misa_ext_mask', MISA_EXT], ['features', 'env.features', 0],
  ['priv', 'env.priv', PRV_M], ['virt', 'env.virt', 0], ['satp', 'env.satp', 0],
  ['stval', 'env.stval', 0], ['medeleg', 'env.medeleg', 0], ['stvec', 'env.stvec', 0],
  ['sepc', 'env.sepc', 0], ['scause', 'env.scause', 0], ['miselect', 'env.miselect', 0],
  ['siselect', 'env.siselect', 0], ['scounteren', 'env.scounteren', 0],
  ['mcounteren', 'env.mcounteren', 0], ['mcountinhibit', 'env.mcountinhibit', 0],
  ['sscratch', 'env.sscratch', 0], ['mfromhost', 'env.mfromhost', 0],
  ['mtohost', 'env.mtohost', 0], ['stimecmp', 'env.stimecmp', 0], ['menvcfg', 'env.menvcfg', 0],
  ['senvcfg', 'env.senvcfg', 0], ['henvcfg', 'env.henvcfg', 0],
];

function pmuZero(): PmuCtrVm {
  return { val: 0, valh: 0, prev: 0, prevh: 0, started: false };
}

function riscvCpuVmCreate(): RiscvCpuVm {
  const vm = {
    gpr: new Uint32Array(32), fpr: new Array<number>(32).fill(0), miprio: IPRIO_DEFAULT.slice(),
    siprio: IPRIO_DEFAULT.slice(), pc: 0, loadRes: 0, loadVal: 0, badaddr: 0, guestPhysFaultAddr: 0,
    resetvec: 0, mhartid: 0, mstatus: 0, mip: 0, miclaim: 0, mie: 0, mideleg: 0, mtvec: 0, mepc: 0,
    mcause: 0, mtval: 0, mscratch: 0,
    pmuCtrs: Array.from({ length: RV_MAX_MHPMCOUNTERS }, pmuZero),
    mhpmeventVal: new Array<number>(RV_MAX_MHPMEVENTS).fill(0),
    mhpmeventhVal: new Array<number>(RV_MAX_MHPMEVENTS).fill(0),
  } as Partial<RiscvCpuVm> as RiscvCpuVm;
  const rec = vm as unknown as Record<string, number>;
  for (const [prop, , value] of FIXED) rec[prop] = value;
  return vm;
}

const TWO32 = 0x1_0000_0000;

/** Halves of (a + b) mod 2^64, where a = hi:lo and b is a safe non-negative integer. */
function add64(hi: number, lo: number, b: number): [number, number] {
  const s = lo + (b % TWO32);
  const carry = s >= TWO32 ? 1 : 0;
  return [(hi + Math.floor(b / TWO32) + carry) % TWO32, s % TWO32];
}

/** Halves of (a - b) mod 2^64. */
function sub64(ahi: number, alo: number, bhi: number, blo: number): [number, number] {
  let lo = alo - blo;
  let borrow = 0;
  if (lo < 0) {
    lo += TWO32;
    borrow = 1;
  }
  return [((ahi - bhi - borrow) % TWO32 + TWO32) % TWO32, lo];
}

/** Counter `pmu` holds hi:lo + icount (the CSR value), prev = icount. */
function pmuFromOffset(pmu: PmuCtrVm, hi: number, lo: number, icount: number): void {
  [pmu.valh, pmu.val] = add64(hi, lo, icount);
  pmu.prevh = Math.floor(icount / TWO32);
  pmu.prev = icount % TWO32;
  pmu.started = false;
}

/** @qemu target/riscv/machine.c (the part vmstate_riscv_cpu reads) */
function riscvCpuPreSave(vm: RiscvCpuVm, cpu: CpuState): void {
  for (let i = 0; i < 32; i++) vm.gpr[i] = cpu.x[i]! >>> 0;
  vm.pc = cpu.pc >>> 0;
  vm.loadRes = cpu.resvAddr >>> 0;
  vm.resetvec = cpu.resetVector;
  vm.mhartid = cpu.mhartid;
  // The architectural value: MPP reads as M on a hart without lower privilege modes.
  vm.mstatus = (cpu.mstatus | MSTATUS_MPP) >>> 0;
  vm.mip = cpu.mip;
  vm.mie = cpu.mie;
  vm.mideleg = cpu.mideleg;
  vm.mtvec = cpu.mtvec;
  vm.mepc = cpu.mepc;
  vm.mcause = cpu.mcause;
  vm.mtval = cpu.mtval;
  vm.mscratch = cpu.mscratch;
  pmuFromOffset(vm.pmuCtrs[0]!, cpu.mcycleOffsetHi, cpu.mcycleOffsetLo, cpu.icount);
  pmuFromOffset(vm.pmuCtrs[2]!, cpu.minstretOffsetHi, cpu.minstretOffsetLo, cpu.icount);
}

const vmstatePmuCtr: VMStateDescription<PmuCtrVm> = {
  name: 'cpu/pmu',
  versionId: 1,
  minimumVersionId: 1,
  fields: [
    vmstateUint32('mhpmcounter_val', 'val'), vmstateUint32('mhpmcounterh_val', 'valh'),
    vmstateUint32('mhpmcounter_prev', 'prev'), vmstateUint32('mhpmcounterh_prev', 'prevh'),
    vmstateBool('started', 'started'),
  ],
};

/** Subsections detvm's hart never needs; described so a QEMU stream carrying them parses. */
const vmstatePmpEntry: VMStateDescription = {
  name: 'cpu/pmp/entry',
  versionId: 1,
  minimumVersionId: 1,
  fields: [vmstateUint32('addr_reg', 'addrReg'), vmstateUint8('cfg_reg', 'cfgReg')],
};

function subsectionUnsupported(what: string) {
  return (_s: VMStateStaged, _v: number, _l: unknown, report: (m: string) => void): number => {
    report(`cpu: the stream's hart has ${what}, which detvm's M-mode RV32IMA hart does not`);
    return -EINVAL;
  };
}

const vmstatePmp: VMStateDescription = {
  name: 'cpu/pmp',
  versionId: 1,
  minimumVersionId: 1,
  needed: () => false,
  postLoad: subsectionUnsupported('PMP entries'),
  fields: [vmstateStructArray('env.pmp_state.pmp', 'pmp', MAX_RISCV_PMPS, vmstatePmpEntry)],
};

const HYPER_FIELDS: ReadonlyArray<readonly [string, 'uint32' | 'uint64']> = [
  ['env.hstatus', 'uint32'], ['env.hedeleg', 'uint32'], ['env.hideleg', 'uint64'],
  ['env.hcounteren', 'uint32'], ['env.htval', 'uint32'], ['env.htinst', 'uint32'],
  ['env.hgatp', 'uint32'], ['env.hgeie', 'uint32'], ['env.hgeip', 'uint32'],
  ['env.htimedelta', 'uint64'], ['env.vstimecmp', 'uint64'], ['env.hvictl', 'uint32'],
];
const HYPER_TAIL: ReadonlyArray<readonly [string, 'uint32' | 'uint64']> = [
  ['env.vsstatus', 'uint64'], ['env.vstvec', 'uint32'], ['env.vsscratch', 'uint32'],
  ['env.vsepc', 'uint32'], ['env.vscause', 'uint32'], ['env.vstval', 'uint32'],
  ['env.vsatp', 'uint32'], ['env.vsiselect', 'uint32'], ['env.mtval2', 'uint32'],
  ['env.mtinst', 'uint32'], ['env.stvec_hs', 'uint32'], ['env.sscratch_hs', 'uint32'],
  ['env.sepc_hs', 'uint32'], ['env.scause_hs', 'uint32'], ['env.stval_hs', 'uint32'],
  ['env.satp_hs', 'uint32'], ['env.mstatus_hs', 'uint64'],
];

const vmstateHyper: VMStateDescription = {
  name: 'cpu/hyper',
  versionId: 2,
  minimumVersionId: 2,
  needed: () => false,
  postLoad: subsectionUnsupported('the H extension'),
  fields: [
    ...HYPER_FIELDS.map(([n, t]) => (t === 'uint32' ? vmstateUint32 : vmstateUint64)(n, n)),
    vmstateArray('uint8', 'env.hviprio', 'env.hviprio', 64),
    ...HYPER_TAIL.map(([n, t]) => (t === 'uint32' ? vmstateUint32 : vmstateUint64)(n, n)),
  ],
};

/** @qemu vmstate_envcfg: needed because the hart reports privileged spec 1.12 */
const vmstateEnvcfg: VMStateDescription<RiscvCpuVm> = {
  name: 'cpu/envcfg',
  versionId: 1,
  minimumVersionId: 1,
  needed: (vm) => vm.privVer >= PRIV_VERSION_1_12_0,
  fields: [
    vmstateUint64('env.menvcfg', 'menvcfg'), vmstateUint32('env.senvcfg', 'senvcfg'),
    vmstateUint64('env.henvcfg', 'henvcfg'),
  ],
};

const vmstateDebug: VMStateDescription = {
  name: 'cpu/debug',
  versionId: 2,
  minimumVersionId: 2,
  needed: () => false,
  postLoad: subsectionUnsupported('debug triggers'),
  fields: [
    vmstateUint32('env.trigger_cur', 'triggerCur'),
    vmstateArray('uint32', 'env.tdata1', 'tdata1', 2),
    vmstateArray('uint32', 'env.tdata2', 'tdata2', 2),
    vmstateArray('uint32', 'env.tdata3', 'tdata3', 2),
  ],
};

/** A QEMU stream with these is from a hart with V, J, RV128 or KVM: not loadable here. */
function unsupportedSub(name: string, versionId: number, what: string): VMStateDescription {
  return {
    name, versionId, minimumVersionId: versionId, needed: () => false, fields: [],
    postLoad: subsectionUnsupported(what),
  };
}

/** Report a value detvm's hart cannot hold as VMSTATE_*_EQUAL would, then the field. */
function rejectValue(report: (m: string) => void, field: string, want: number, got: unknown): number {
  const shown = typeof got === 'number' || typeof got === 'bigint' ? got.toString(16) : String(got);
  report(`${want.toString(16)} != ${shown}`);
  report(`Failed to load cpu:${field}`);
  return -EINVAL;
}

function checkArray(
  staged: VMStateStaged, prop: string, want: ArrayLike<number>, field: string,
  report: (m: string) => void,
): number {
  const got = staged[prop] as ArrayLike<number> | undefined;
  if (got === undefined) return 0;
  for (let i = 0; i < want.length; i++) {
    if (got[i] !== want[i]) return rejectValue(report, field, want[i]!, got[i]);
  }
  return 0;
}

function checkPmu(staged: VMStateStaged, report: (m: string) => void): number {
  const ctrs = staged.pmuCtrs as PmuCtrVm[] | undefined;
  if (ctrs === undefined) return 0;
  for (let i = 0; i < ctrs.length; i++) {
    const c = ctrs[i]!;
    if (i === 0 || i === 2) {
      if (c.prevh >= 0x20_0000) return rejectValue(report, 'env.pmu_ctrs', 0, c.prevh);
      continue;
    }
    if (c.val || c.valh || c.prev || c.prevh) return rejectValue(report, 'env.pmu_ctrs', 0, c.val);
  }
  const c0 = ctrs[0]!;
  const c2 = ctrs[2]!;
  if (c0.prev !== c2.prev || c0.prevh !== c2.prevh) {
    return rejectValue(report, 'env.pmu_ctrs', c0.prev, c2.prev);
  }
  return 0;
}

/**
 * Reject what the hart cannot hold. The staged copy keeps QEMU's values; the entry's commit
 * turns them into CpuState.
 * @qemu riscv_cpu_post_load
 */
function riscvCpuPostLoad(
  staged: VMStateStaged, _v: number, _live: RiscvCpuVm, report: (m: string) => void,
): number {
  for (const [prop, field, value] of FIXED) {
    const got = staged[prop];
    if (got !== undefined && got !== value) return rejectValue(report, field, value, got);
  }
  let ret = checkArray(staged, 'fpr', new Array<number>(32).fill(0), 'env.fpr', report)
    || checkArray(staged, 'miprio', IPRIO_DEFAULT, 'env.miprio', report)
    || checkArray(staged, 'siprio', IPRIO_DEFAULT, 'env.siprio', report)
    || checkArray(staged, 'mhpmeventVal', new Array<number>(32).fill(0), 'env.mhpmevent_val', report)
    || checkArray(staged, 'mhpmeventhVal', new Array<number>(32).fill(0), 'env.mhpmeventh_val',
      report);
  if (ret) return ret;
  ret = checkPmu(staged, report);
  if (ret) return ret;
  const mstatus = staged.mstatus as number;
  if ((mstatus & ~(MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP)) !== 0
    || (mstatus & MSTATUS_MPP) !== MSTATUS_MPP) {
    return rejectValue(report, 'env.mstatus', (mstatus & (MSTATUS_MIE | MSTATUS_MPIE)) | MSTATUS_MPP,
      mstatus);
  }
  for (const [prop, field] of [['mip', 'env.mip'], ['mie', 'env.mie']] as const) {
    const v = staged[prop] as number;
    if ((v & ~MIP_M_MODE) !== 0) return rejectValue(report, field, v & MIP_M_MODE, v);
  }
  for (const prop of ['resetvec', 'mideleg'] as const) {
    const v = staged[prop] as number;
    if (v > 0xffff_ffff) return rejectValue(report, `env.${prop}`, v % TWO32, v);
  }
  return 0;
}

/** @qemu target/riscv/machine.c vmstate_riscv_cpu (7.2, version 5) */
export const vmstateRiscvCpu: VMStateDescription<RiscvCpuVm> = {
  name: 'cpu',
  versionId: 5,
  minimumVersionId: 5,
  postLoad: riscvCpuPostLoad,
  fields: [
    vmstateArray('uint32', 'env.gpr', 'gpr', 32),
    vmstateArray('uint64', 'env.fpr', 'fpr', 32),
    vmstateArray('uint8', 'env.miprio', 'miprio', 64),
    vmstateArray('uint8', 'env.siprio', 'siprio', 64),
    vmstateUint32('env.pc', 'pc'), vmstateUint32('env.load_res', 'loadRes'),
    vmstateUint32('env.load_val', 'loadVal'), vmstateUint32('env.frm', 'frm'),
    vmstateUint32('env.badaddr', 'badaddr'),
    vmstateUint32('env.guest_phys_fault_addr', 'guestPhysFaultAddr'),
    vmstateUint32('env.priv_ver', 'privVer'), vmstateUint32('env.vext_ver', 'vextVer'),
    vmstateUint32('env.misa_mxl', 'misaMxl'), vmstateUint32('env.misa_ext', 'misaExt'),
    vmstateUint32('env.misa_mxl_max', 'misaMxlMax'),
    vmstateUint32('env.misa_ext_mask', 'misaExtMask'), vmstateUint32('env.features', 'features'),
    vmstateUint32('env.priv', 'priv'), vmstateUint32('env.virt', 'virt'),
    vmstateUint64('env.resetvec', 'resetvec'), vmstateUint32('env.mhartid', 'mhartid'),
    vmstateUint64('env.mstatus', 'mstatus'), vmstateUint64('env.mip', 'mip'),
    vmstateUint64('env.miclaim', 'miclaim'), vmstateUint64('env.mie', 'mie'),
    vmstateUint64('env.mideleg', 'mideleg'), vmstateUint32('env.satp', 'satp'),
    vmstateUint32('env.stval', 'stval'), vmstateUint32('env.medeleg', 'medeleg'),
    vmstateUint32('env.stvec', 'stvec'), vmstateUint32('env.sepc', 'sepc'),
    vmstateUint32('env.scause', 'scause'), vmstateUint32('env.mtvec', 'mtvec'),
    vmstateUint32('env.mepc', 'mepc'), vmstateUint32('env.mcause', 'mcause'),
    vmstateUint32('env.mtval', 'mtval'), vmstateUint32('env.miselect', 'miselect'),
    vmstateUint32('env.siselect', 'siselect'), vmstateUint32('env.scounteren', 'scounteren'),
    vmstateUint32('env.mcounteren', 'mcounteren'),
    vmstateUint32('env.mcountinhibit', 'mcountinhibit'),
    vmstateStructArray('env.pmu_ctrs', 'pmuCtrs', RV_MAX_MHPMCOUNTERS, vmstatePmuCtr),
    vmstateArray('uint32', 'env.mhpmevent_val', 'mhpmeventVal', RV_MAX_MHPMEVENTS),
    vmstateArray('uint32', 'env.mhpmeventh_val', 'mhpmeventhVal', RV_MAX_MHPMEVENTS),
    vmstateUint32('env.sscratch', 'sscratch'), vmstateUint32('env.mscratch', 'mscratch'),
    vmstateUint64('env.mfromhost', 'mfromhost'), vmstateUint64('env.mtohost', 'mtohost'),
    vmstateUint64('env.stimecmp', 'stimecmp'),
  ],
  subsections: [
    vmstatePmp, vmstateHyper, unsupportedSub('cpu/vector', 2, 'the V extension'),
    unsupportedSub('cpu/pointer_masking', 1, 'pointer masking'),
    unsupportedSub('cpu/rv128', 1, 'RV128 registers'),
    unsupportedSub('cpu/kvmtimer', 1, 'a KVM timer'), vmstateEnvcfg, vmstateDebug,
    unsupportedSub('cpu/smtateen', 1, 'Smstateen'),
  ],
};

/** Apply a staged "cpu" section to the hart (the load has checked every value). */
function riscvCpuCommit(cpu: CpuState, staged: VMStateStaged): void {
  const num = (k: string): number => staged[k] as number;
  const gpr = staged.gpr as number[];
  for (let i = 0; i < 32; i++) cpu.x[i] = i === 0 ? 0 : gpr[i]! | 0;
  cpu.pc = num('pc');
  cpu.resvAddr = num('loadRes') === 0xffff_ffff ? -1 : num('loadRes');
  cpu.resetVector = num('resetvec');
  cpu.mhartid = num('mhartid');
  cpu.mstatus = num('mstatus') & (MSTATUS_MIE | MSTATUS_MPIE);
  cpu.mip = num('mip');
  cpu.mie = num('mie');
  cpu.mideleg = num('mideleg');
  cpu.mtvec = num('mtvec');
  cpu.mepc = num('mepc');
  cpu.mcause = num('mcause');
  cpu.mtval = num('mtval');
  cpu.mscratch = num('mscratch');
  const ctrs = staged.pmuCtrs as PmuCtrVm[];
  const c0 = ctrs[0]!;
  const c2 = ctrs[2]!;
  cpu.icount = c0.prevh * TWO32 + c0.prev;
  [cpu.mcycleOffsetHi, cpu.mcycleOffsetLo] = sub64(c0.valh, c0.val, c0.prevh, c0.prev);
  [cpu.minstretOffsetHi, cpu.minstretOffsetLo] = sub64(c2.valh, c2.val, c2.prevh, c2.prev);
  cpu.exitRequest = false;
}

/** cpu_common/exception_index: detvm takes snapshots between slices, where it is always -1. */
const vmstateCpuCommonExceptionIndex: VMStateDescription<CpuCommonVm> = {
  name: 'cpu_common/exception_index',
  versionId: 1,
  minimumVersionId: 1,
  needed: (c) => c.exceptionIndex !== -1,
  fields: [vmstateInt32('exception_index', 'exceptionIndex')],
  postLoad: (staged, _v, _l, report) => {
    if (staged.exceptionIndex === -1) return 0;
    report(`ffffffff != ${((staged.exceptionIndex as number) >>> 0).toString(16)}`);
    report('Failed to load cpu_common:exception_index');
    return -EINVAL;
  },
};

const vmstateCpuCommonCrashOccurred: VMStateDescription<CpuCommonVm> = {
  name: 'cpu_common/crash_occurred',
  versionId: 1,
  minimumVersionId: 1,
  needed: () => false,
  fields: [vmstateBool('crash_occurred', 'crashOccurred')],
};

/** @qemu cpu.c vmstate_cpu_common */
export const vmstateCpuCommon: VMStateDescription<CpuCommonVm> = {
  name: 'cpu_common',
  versionId: 1,
  minimumVersionId: 1,
  preLoad: (staged) => {
    staged.exceptionIndex = -1;
    return 0;
  },
  postLoad: (staged, _v, _l, report) => {
    // cpu_common_post_load drops CPU_INTERRUPT_EXIT; HARD is recomputed from mip by the hart.
    const req = staged.interruptRequest as number;
    if ((req & ~(CPU_INTERRUPT_HARD | CPU_INTERRUPT_EXITTB)) === 0) return 0;
    report(`${(req & CPU_INTERRUPT_HARD).toString(16)} != ${req.toString(16)}`);
    report('Failed to load cpu_common:interrupt_request');
    return -EINVAL;
  },
  fields: [
    vmstateUint32('halted', 'halted'), vmstateUint32('interrupt_request', 'interruptRequest'),
  ],
  subsections: [vmstateCpuCommonExceptionIndex, vmstateCpuCommonCrashOccurred],
};

/**
 * Register the hart's "cpu_common" and "cpu" sections (instance = cpu index), as QEMU's
 * cpu_exec_realizefn does. Returns the two entries.
 */
export function riscvCpuRegister(sv: SaveVMState, cpu: CpuState): SaveStateEntry[] {
  assert(cpu.cpuIndex >= 0, 'a hart without a cpu index');
  const common: CpuCommonVm = { halted: 0, interruptRequest: 0, exceptionIndex: -1 };
  const commonVmsd: VMStateDescription<CpuCommonVm> = {
    ...vmstateCpuCommon,
    preSave: (c) => {
      c.halted = cpu.halted ? 1 : 0;
      // riscv_cpu_update_mip keeps CPU_INTERRUPT_HARD set while any mip bit is.
      c.interruptRequest = cpu.mip !== 0 ? CPU_INTERRUPT_HARD : 0;
      c.exceptionIndex = -1;
      return 0;
    },
  };
  const vm = riscvCpuVmCreate();
  const cpuVmsd: VMStateDescription<RiscvCpuVm> = {
    ...vmstateRiscvCpu,
    preSave: (v) => {
      riscvCpuPreSave(v, cpu);
      return 0;
    },
  };
  return [
    vmstateRegister(sv, cpu.cpuIndex, commonVmsd, common, {
      commit: (_c, staged) => {
        cpu.halted = staged.halted !== 0 && staged.halted !== undefined;
      },
    }),
    vmstateRegister(sv, cpu.cpuIndex, cpuVmsd, vm, {
      commit: (_v, staged) => riscvCpuCommit(cpu, staged),
    }),
  ];
}
