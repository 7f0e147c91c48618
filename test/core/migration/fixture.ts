// Test fixture for core/migration: a small machine made of the real pieces migration sees
// (the loop's clocks, guest RAM from core/memory, a ROM-like block, globalstate) plus a test
// device whose description uses every field kind, registered in a savevm registry as the virt
// machine will register them. `machineHash` fingerprints all of it, to prove atomicity.
import { createHash } from 'node:crypto';
import { loopMachineCreate, type ClocksState } from '../../../core/loop/index.ts';
import {
  addressSpaceCreate, addressSpaceRead, addressSpaceWrite, type AddressSpace, RAM_BASE,
} from '../../../core/memory/index.ts';
import {
  type GlobalState, type RamState, type SaveVMState, type VMStateDescription, cpuTimersRegister,
  globalStateCreate, globalStateStore, ramBlockFromBytes, ramBlockFromRam, ramMigInit,
  registerGlobalState, savevmStateCreate, vmstateArray, vmstateBool, vmstateBuffer, vmstateInt16,
  vmstateInt32, vmstateInt64, vmstateInt8, vmstateRegister, vmstateScalar, vmstateStruct,
  vmstateStructArray, vmstateTimer, vmstateUint16, vmstateUint32, vmstateUint64, vmstateUint8,
  vmstateUnused, vmstateVarray, vmstateVbuffer,
} from '../../../core/migration/index.ts';
import { prngCreate, prngNextU32, type PrngState } from '../../../core/util/index.ts';

/** A nested element: two fields, compressible (no subsections). */
export interface TestElem {
  a: number;
  b: boolean;
}

/** State of the test device: plain data, one property per field kind. */
export interface TestDevState {
  flag: boolean;
  u8: number;
  u16: number;
  u32: number;
  u64: number;
  u64big: bigint;
  i8: number;
  i16: number;
  i32: number;
  i64: number;
  regs: Uint32Array;
  signedRegs: Int32Array;
  list: number[];
  listLen: number;
  buf: Uint8Array;
  name: Uint8Array;
  nameLen: number;
  timerNs: number;
  inner: TestElem;
  elems: TestElem[];
  magic: number;
  limit: number;
  /** Only saved from version 3. */
  late: number;
  /** Subsection `testdev/extra` is sent when this is non-zero. */
  extra: number;
  extraTimer: number;
  /** Not described: must survive loads untouched. */
  derivedCache: number;
}

export const vmstateTestElem: VMStateDescription<TestElem> = {
  name: 'testdev/elem',
  versionId: 1,
  minimumVersionId: 1,
  fields: [vmstateUint32('a', 'a'), vmstateBool('b', 'b')],
};

const vmstateTestFlat: VMStateDescription<TestDevState> = {
  name: 'testdev/flat',
  versionId: 2,
  minimumVersionId: 1,
  fields: [vmstateUint8('u8', 'u8'), vmstateInt8('i8', 'i8')],
};

const vmstateTestExtraDeep: VMStateDescription<TestDevState> = {
  name: 'testdev/extra/deep',
  versionId: 1,
  minimumVersionId: 1,
  needed: (s) => s.extra > 1,
  fields: [vmstateTimer('extra_timer', 'extraTimer')],
};

const vmstateTestExtra: VMStateDescription<TestDevState> = {
  name: 'testdev/extra',
  versionId: 1,
  minimumVersionId: 1,
  needed: (s) => s.extra !== 0,
  fields: [vmstateUint32('extra', 'extra')],
  subsections: [vmstateTestExtraDeep],
};

/** Every field kind the VMState interpreter supports. */
export const vmstateTestDev: VMStateDescription<TestDevState> = {
  name: 'testdev',
  versionId: 3,
  minimumVersionId: 2,
  fields: [
    vmstateBool('flag', 'flag'),
    vmstateUint16('u16', 'u16'),
    vmstateUint32('u32', 'u32'),
    vmstateUint64('u64', 'u64'),
    vmstateUint64('u64big', 'u64big'),
    vmstateInt16('i16', 'i16'),
    vmstateInt32('i32', 'i32'),
    vmstateInt64('i64', 'i64'),
    vmstateArray('uint32', 'regs', 'regs', 4),
    vmstateArray('uint32', 'signed_regs', 'signedRegs', 3),
    vmstateUint32('list_len', 'listLen'),
    vmstateVarray('uint16', 'list', 'list', 'listLen', 8),
    vmstateBuffer('buf', 'buf', 6),
    vmstateUint32('name_len', 'nameLen'),
    vmstateVbuffer('name', 'name', 'nameLen', 32),
    vmstateUnused(3),
    vmstateTimer('timer', 'timerNs'),
    vmstateStruct('inner', 'inner', vmstateTestElem),
    vmstateStruct('flat', null, vmstateTestFlat),
    vmstateStructArray('elems', 'elems', 2, vmstateTestElem),
    vmstateScalar('uint32 equal', 'magic', 'magic'),
    vmstateScalar('int32 le', 'limit', 'limit'),
    vmstateUnused(2),
    vmstateUint32('late', 'late', { versionId: 3 }),
  ],
  subsections: [vmstateTestExtra],
};

export function testDevCreate(): TestDevState {
  return {
    flag: false, u8: 0, u16: 0, u32: 0, u64: 0, u64big: 0n, i8: 0, i16: 0, i32: 0, i64: 0,
    regs: new Uint32Array(4), signedRegs: new Int32Array(3), list: [], listLen: 0,
    buf: new Uint8Array(6),
    name: new Uint8Array(0), nameLen: 0, timerNs: -1, inner: { a: 0, b: false },
    elems: [{ a: 0, b: false }, { a: 0, b: false }],
    magic: 0x5eed, limit: 100, late: 0, extra: 0, extraTimer: -1, derivedCache: 0,
  };
}

/** Fill the device with seeded values covering signs, widths and both subsection levels. */
export function testDevRandomize(s: TestDevState, rng: PrngState): void {
  const r = (): number => prngNextU32(rng);
  s.flag = (r() & 1) === 1;
  s.u8 = r() & 0xff;
  s.u16 = r() & 0xffff;
  s.u32 = r();
  s.u64 = r() * 0x10000 + (r() & 0xffff);
  s.u64big = (BigInt(r()) << 32n) | BigInt(r());
  s.i8 = (r() & 0xff) - 128;
  s.i16 = (r() & 0xffff) - 32768;
  s.i32 = r() | 0;
  s.i64 = -(r() * 0x100 + (r() & 0xff));
  for (let i = 0; i < 4; i++) s.regs[i] = r();
  for (let i = 0; i < 3; i++) s.signedRegs[i] = r() | 0;
  s.listLen = r() % 9;
  s.list = Array.from({ length: s.listLen }, () => r() & 0xffff);
  for (let i = 0; i < 6; i++) s.buf[i] = r() & 0xff;
  s.nameLen = 1 + (r() % 20);
  s.name = Uint8Array.from({ length: s.nameLen }, () => 0x61 + (r() % 26));
  s.timerNs = r() % 3 === 0 ? -1 : r() * 1000;
  s.inner = { a: r(), b: (r() & 1) === 1 };
  s.elems = [{ a: r(), b: true }, { a: r(), b: false }];
  s.late = r();
  s.extra = r() % 3;
  s.extraTimer = s.extra > 1 ? r() % 1_000_000 : -1; // only sent when extra > 1
  s.limit = 100;
  s.derivedCache = r();
}

export interface TestMachine {
  sv: SaveVMState;
  clocks: ClocksState;
  as: AddressSpace;
  rom: Uint8Array;
  gs: GlobalState;
  dev: TestDevState;
  rs: RamState;
}

export const TEST_RAM_BYTES = 64 * 1024;
export const TEST_ROM_BYTES = 8 * 1024;

/** A fresh machine: registration order as on the virt board (timer, ram, devices, globalstate). */
export function makeTestMachine(ramBytes = TEST_RAM_BYTES): TestMachine {
  const m = loopMachineCreate({ clock: { icountShift: 0 } });
  const sv = savevmStateCreate('virt');
  const as = addressSpaceCreate(ramBytes);
  const rom = new Uint8Array(TEST_ROM_BYTES);
  const gs = globalStateCreate();
  const dev = testDevCreate();
  cpuTimersRegister(sv, m.clocks);
  const { rs } = ramMigInit(sv, [
    ramBlockFromBytes('riscv_virt_board.mrom', rom), ramBlockFromRam(as, 'riscv_virt_board.ram'),
  ]);
  vmstateRegister(sv, 0, vmstateTestDev, dev);
  registerGlobalState(sv, gs);
  return { sv, clocks: m.clocks, as, rom, gs, dev, rs };
}

/**
 * Give the machine seeded content: clocks, a few RAM pages (one all-zero but written), ROM, device.
 */
export function randomizeMachine(tm: TestMachine, seed: number): void {
  const rng = prngCreate(seed);
  tm.clocks.cpuTicksOffset = prngNextU32(rng);
  tm.clocks.cpuClockOffsetNs = prngNextU32(rng) * 7;
  tm.clocks.icount = prngNextU32(rng);
  tm.clocks.icountBiasNs = prngNextU32(rng);
  const pages = tm.as.ramSize / 4096;
  for (let i = 0; i < 3; i++) {
    const page = prngNextU32(rng) % pages;
    const data = Uint8Array.from({ length: 4096 }, () => prngNextU32(rng) & 0xff);
    addressSpaceWrite(tm.as, RAM_BASE + page * 4096, data);
  }
  addressSpaceWrite(tm.as, RAM_BASE + (pages - 1) * 4096, new Uint8Array(4096));
  for (let i = 0; i < 64; i++) tm.rom[i] = prngNextU32(rng) & 0xff;
  testDevRandomize(tm.dev, rng);
  globalStateStore(tm.gs, 'running');
}

/**
 * A fingerprint of every piece of state the machine holds. `strict` adds what differs between a
 * source and a destination that received its state: which RAM pages were ever written (a ZERO
 * record for an untouched page leaves it untouched) and globalstate's load-side fields.
 */
export function machineHash(tm: TestMachine, strict = true): string {
  const h = createHash('sha256');
  const { host: _host, ...clocks } = tm.clocks;
  h.update(JSON.stringify(clocks));
  const plain = (_k: string, v: unknown): unknown => {
    if (typeof v === 'bigint') return `${v}n`;
    return ArrayBuffer.isView(v) ? Array.from(v as Uint8Array) : v;
  };
  h.update(JSON.stringify(tm.dev, plain));
  const { state, received, ...gs } = tm.gs;
  h.update(JSON.stringify({ ...gs, ...(strict ? { state, received } : {}) }, plain));
  h.update(tm.rom);
  if (strict) h.update(tm.as.watch);
  const ram = new Uint8Array(tm.as.ramSize);
  addressSpaceRead(tm.as, RAM_BASE, ram);
  h.update(ram);

  return h.digest('hex');
}
