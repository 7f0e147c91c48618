// Loading a migration stream (migration/savevm.c qemu_loadvm_state and qemu_loadvm_state_main),
// atomically and incrementally. Everything the stream brings is staged: device sections into
// fresh plain objects, RAM pages into per-block maps. Only when the stream has loaded to its
// end does loadvmCommit apply the staged state, so a stream that fails anywhere leaves the
// machine exactly as it was. Bytes may arrive in chunks: the loader works in units (the header,
// one device section, one RAM record, a footer...), takes a mark before each and rewinds to it
// when the unit needs bytes that have not arrived yet. Messages and return codes are QEMU's.
// Invariants: a unit changes loader state only when it completes; commit happens at most once.

import { assert } from '../util/index.ts';
import { EINVAL, ENOTSUP, type MigrationFailure } from './errors.ts';
import { configurationStateCreate, vmstateConfiguration } from './configuration.ts';
import { loadvmProcessCommand, type PostcopyState } from './loadvm-command.ts';
import {
  type QEMUFileReader, QEMU_FILE_NEED_MORE, qemuFileAvail, qemuFileMark, qemuFilePush,
  qemuFileReaderCreate, qemuFileRelease, qemuFileRestore, qemuFileSetEof, qemuGetBe32, qemuGetByte,
  qemuGetCountedString, qemuGetSkip,
} from './qemu-file-reader.ts';
import {
  QEMU_VM_COMMAND, QEMU_VM_CONFIGURATION, QEMU_VM_EOF, QEMU_VM_FILE_MAGIC, QEMU_VM_FILE_VERSION,
  QEMU_VM_FILE_VERSION_COMPAT, QEMU_VM_SECTION_END, QEMU_VM_SECTION_FOOTER, QEMU_VM_SECTION_FULL,
  QEMU_VM_SECTION_PART, QEMU_VM_SECTION_START, QEMU_VM_VMDESCRIPTION, qemuSavevmStateBlocked,
  type LoadOptions, type SaveStateEntry, type SaveVMState,
} from './savevm.ts';
import { vmstateCommit, vmstateLoadState } from './vmstate.ts';
import type { VMStateStaged } from './vmstate-types.ts';

/**
 * Where a load is. `loaded`: the stream is complete and valid, ready for loadvmCommit.
 * `failed`: see `failure`; nothing was applied. `committed`: applied.
 */
export type LoadvmPhase =
  | 'header' | 'main' | 'body' | 'footer' | 'vmdesc' | 'vmdesc-skip'
  | 'loaded' | 'failed' | 'committed';

interface LoadvmSection {
  se: SaveStateEntry;
  sectionId: number;
  instanceId: number;
  versionId: number;
  /** START/FULL (true) or PART/END: selects QEMU's error message. */
  startFull: boolean;
}

/** One load in progress. Runtime state of the incoming side, not VM state. */
export interface LoadvmState {
  sv: SaveVMState;
  opts: LoadOptions;
  f: QEMUFileReader;
  phase: LoadvmPhase;
  cur: LoadvmSection | null;
  /** se->load_section_id and se->load_version_id of this load (QEMU's default is 0). */
  loadIds: Map<SaveStateEntry, { sectionId: number; versionId: number }>;
  /** Staged state per entry; `order` lists the entries the stream touched, in stream order. */
  staged: Map<SaveStateEntry, unknown>;
  order: SaveStateEntry[];
  postcopy: PostcopyState;
  vmdescLeft: number;
  failure: MigrationFailure | null;
  /** Non-fatal error_report lines ("Expected vmdescription section, but got 0"). */
  warnings: string[];
  /** The error_report lines of the unit being run, and the function that adds one. */
  errs: string[];
  report: (m: string) => void;
}

/** Result of a whole load: ok, or the failure; warnings either way. */
export type LoadvmResult =
  | { ok: true; warnings: string[] }
  | { ok: false; error: MigrationFailure; warnings: string[] };

/** Start loading into the machine whose registry is `sv`; feed the stream with loadvmFeed. */
export function loadvmCreate(sv: SaveVMState, opts: LoadOptions = { ramInPlace: false }): LoadvmState {
  const errs: string[] = [];
  return {
    sv, opts, f: qemuFileReaderCreate(null, false), phase: 'header', cur: null, loadIds: new Map(),
    staged: new Map(), order: [], postcopy: 'none', vmdescLeft: 0, failure: null, warnings: [],
    errs, report: (m) => {
      errs.push(m);
    },
  };
}

function terminal(p: LoadvmPhase): boolean {
  return p === 'loaded' || p === 'failed' || p === 'committed';
}

/**
 * Give the loader the next chunk of the stream (kept by reference: do not reuse it), or null
 * when the stream ended. Returns the phase reached: `loaded` or `failed` end the load, any
 * other phase means it waits for more bytes.
 */
export function loadvmFeed(ls: LoadvmState, chunk: Uint8Array | null): LoadvmPhase {
  if (terminal(ls.phase)) return ls.phase;
  if (chunk === null) qemuFileSetEof(ls.f);
  else qemuFilePush(ls.f, chunk);
  return loadvmRun(ls);
}

type UnitResult = 'continue' | 'need-more';

/** Run units until the load ends or lacks bytes. */
function loadvmRun(ls: LoadvmState): LoadvmPhase {
  for (;;) {
    if (terminal(ls.phase)) return ls.phase;
    const mark = qemuFileMark(ls.f);
    const phase = ls.phase;
    // The unit's messages (one array for every unit: a RAM load runs a unit per page).
    const errs = ls.errs;
    if (errs.length !== 0) errs.length = 0; // setting length costs a runtime call, per page
    let r: UnitResult;
    try {
      r = runUnit(ls);
    } catch (e) {
      if (e !== QEMU_FILE_NEED_MORE) throw e;
      qemuFileRestore(ls.f, mark);
      return ls.phase;
    }
    if (ls.phase === 'failed') ls.failure = { ret: ls.failure?.ret ?? -EINVAL, messages: errs.slice() };
    else if (errs.length > 0) ls.warnings.push(...errs);
    qemuFileRelease(ls.f);
    if (r === 'need-more') return ls.phase;
    // Every unit consumes bytes or moves on; a unit that does neither would spin forever.
    assert(ls.f.pos > mark.pos || ls.phase !== phase, `loadvm unit '${phase}' made no progress`);
  }
}

function fail(ls: LoadvmState, ret: number): UnitResult {
  ls.phase = 'failed';
  ls.failure = { ret, messages: [] };
  return 'continue';
}

function runUnit(ls: LoadvmState): UnitResult {
  const report = ls.report;
  switch (ls.phase) {
    case 'header': return unitHeader(ls, report);
    case 'main': return unitMain(ls, report);
    case 'body': return unitBody(ls, report);
    case 'footer':
      return checkSectionFooter(ls, ls.cur!.se, report) ? next(ls, 'main') : fail(ls, -EINVAL);

    case 'vmdesc': return unitVmdesc(ls, report);
    case 'vmdesc-skip': return unitVmdescSkip(ls);
    default: assert(false, `loadvm unit in phase ${ls.phase}`);
  }
}

function next(ls: LoadvmState, phase: LoadvmPhase): UnitResult {
  ls.phase = phase;
  return 'continue';
}

/** Magic, version, configuration, then the handlers' load setup. @qemu qemu_loadvm_state_header */
function unitHeader(ls: LoadvmState, report: (m: string) => void): UnitResult {
  const f = ls.f;
  const blocked = qemuSavevmStateBlocked(ls.sv);
  if (blocked !== null) {
    report(blocked);
    return fail(ls, -EINVAL);
  }
  if (qemuGetBe32(f) !== QEMU_VM_FILE_MAGIC) {
    report('Not a migration stream');
    return fail(ls, -EINVAL);
  }
  const v = qemuGetBe32(f);
  if (v === QEMU_VM_FILE_VERSION_COMPAT) {
    report("SaveVM v2 format is obsolete and don't work anymore");
    return fail(ls, -ENOTSUP);
  }
  if (v !== QEMU_VM_FILE_VERSION) {
    report('Unsupported migration stream version');
    return fail(ls, -ENOTSUP);
  }
  if (ls.sv.sendConfiguration) {
    if (qemuGetByte(f) !== QEMU_VM_CONFIGURATION) {
      report('Configuration section missing');
      return fail(ls, -EINVAL);
    }
    const local = configurationStateCreate(ls.sv.machineName);
    const ret = vmstateLoadState(f, vmstateConfiguration, {}, local, 0, report);
    if (ret) return fail(ls, ret);
  }
  // @qemu qemu_loadvm_state_setup
  for (const se of ls.sv.handlers) {
    if (se.ops && (se.ops.isActive === undefined || se.ops.isActive())) {
      ls.staged.set(se, se.ops.loadSetup(ls.opts));
    }
  }
  return next(ls, 'main');
}

/** One record of the top level. @qemu qemu_loadvm_state_main */
function unitMain(ls: LoadvmState, report: (m: string) => void): UnitResult {
  const f = ls.f;
  const type = qemuGetByte(f);
  if (f.error) return fail(ls, f.error);
  switch (type) {
    case QEMU_VM_SECTION_START:
    case QEMU_VM_SECTION_FULL:
      return sectionStartFull(ls, report);
    case QEMU_VM_SECTION_PART:
    case QEMU_VM_SECTION_END:
      return sectionPartEnd(ls, report);
    case QEMU_VM_COMMAND: {
      const ret = loadvmProcessCommand(f, ls, report);
      return ret < 0 ? fail(ls, ret) : 'continue';
    }
    case QEMU_VM_EOF:
      return next(ls, 'vmdesc');
    default:
      report(`Unknown savevm section type ${type}`);
      return fail(ls, -EINVAL);
  }
}

/** @qemu find_se */
function findSe(sv: SaveVMState, idstr: string, instanceId: number): SaveStateEntry | null {
  return sv.handlers.find((se) => se.idstr === idstr && se.instanceId === instanceId) ?? null;
}

/** @qemu qemu_loadvm_section_start_full */
function sectionStartFull(ls: LoadvmState, report: (m: string) => void): UnitResult {
  const f = ls.f;
  const sectionId = qemuGetBe32(f);
  const idstr = qemuGetCountedString(f);
  if (idstr === null) {
    report(`Unable to read ID string for section ${sectionId}`);
    return fail(ls, -EINVAL);
  }
  const instanceId = qemuGetBe32(f);
  const versionId = qemuGetBe32(f);
  if (f.error) {
    report(`qemu_loadvm_section_start_full: Failed to read instance/version ID: ${f.error}`);
    return fail(ls, f.error);
  }
  const se = findSe(ls.sv, idstr, instanceId);
  if (se === null) {
    report(`Unknown savevm section or instance '${idstr}' ${instanceId}. Make sure that your`
      + ' current VM setup matches your saved VM setup, including any hotplugged devices');

    return fail(ls, -EINVAL);
  }
  if (versionId > se.versionId) {
    report(`savevm: unsupported version ${versionId | 0} for '${idstr}' v${se.versionId}`);
    return fail(ls, -EINVAL);
  }
  ls.loadIds.set(se, { sectionId, versionId });
  return sectionBody(ls, { se, sectionId, instanceId, versionId, startFull: true }, report);
}

/** @qemu qemu_loadvm_section_part_end */
function sectionPartEnd(ls: LoadvmState, report: (m: string) => void): UnitResult {
  const f = ls.f;
  const sectionId = qemuGetBe32(f);
  if (f.error) {
    report(`qemu_loadvm_section_part_end: Failed to read section ID: ${f.error}`);
    return fail(ls, f.error);
  }
  const se = ls.sv.handlers.find((h) => (ls.loadIds.get(h)?.sectionId ?? 0) === sectionId);
  if (se === undefined) {
    report(`Unknown savevm section ${sectionId | 0}`);
    return fail(ls, -EINVAL);
  }
  const versionId = ls.loadIds.get(se)?.versionId ?? 0;
  const s = { se, sectionId, instanceId: se.instanceId, versionId, startFull: false };
  return sectionBody(ls, s, report);
}

function sectionError(
  ls: LoadvmState, s: LoadvmSection, ret: number, report: (m: string) => void,
): UnitResult {
  if (s.startFull) {
    const instance = (s.instanceId >>> 0).toString(16);
    report(`error while loading state for instance 0x${instance} of device '${s.se.idstr}'`);
  } else {
    report(`error while loading state section id ${s.sectionId | 0}(${s.se.idstr})`);
  }
  return fail(ls, ret);
}

function touch(ls: LoadvmState, se: SaveStateEntry): void {
  if (!ls.order.includes(se)) ls.order.push(se);
}

/**
 * A device section loads whole in this unit (a few KiB at most), footer included; an iterable
 * handler's body continues record by record in the `body` phase.
 * @qemu vmstate_load
 */
function sectionBody(ls: LoadvmState, s: LoadvmSection, report: (m: string) => void): UnitResult {
  const se = s.se;
  if (se.ops !== null) {
    const staged = ls.staged.get(se);
    if (staged === undefined) return sectionError(ls, s, -EINVAL, report);
    const ret = se.ops.loadStart ? se.ops.loadStart(staged, s.versionId, report) : 0;
    if (ret < 0) return sectionError(ls, s, ret, report);
    touch(ls, se);
    ls.cur = s;
    return next(ls, 'body');
  }
  const staged: VMStateStaged = {};
  const ret = vmstateLoadState(ls.f, se.vmsd!, staged, se.opaque!, s.versionId, report);
  if (ret < 0) return sectionError(ls, s, ret, report);
  if (!checkSectionFooter(ls, se, report)) return fail(ls, -EINVAL);
  const prev = ls.staged.get(se) as VMStateStaged | undefined;
  if (prev) vmstateCommit(prev, staged);
  else ls.staged.set(se, staged);
  touch(ls, se);
  return 'continue';
}

/** One record of an iterable handler's section body. */
function unitBody(ls: LoadvmState, report: (m: string) => void): UnitResult {
  const s = ls.cur!;
  const ret = s.se.ops!.loadStep(ls.f, ls.staged.get(s.se), report);
  if (ret < 0) return sectionError(ls, s, ret, report);
  return ret > 0 ? next(ls, 'footer') : 'continue';
}

/** @qemu check_section_footer */
function checkSectionFooter(
  ls: LoadvmState, se: SaveStateEntry, report: (m: string) => void,
): boolean {
  if (!ls.sv.sendSectionFooter) return true;
  const f = ls.f;
  const mark = qemuGetByte(f);
  if (f.error) {
    report(`check_section_footer: Read section footer failed: ${f.error}`);
    return false;
  }
  if (mark !== QEMU_VM_SECTION_FOOTER) {
    report(`Missing section footer for ${se.idstr}`);
    return false;
  }
  const id = qemuGetBe32(f);
  const expected = ls.loadIds.get(se)?.sectionId ?? 0;
  if (id !== expected) {
    report(`Mismatched section id in footer for ${se.idstr} - read 0x${id.toString(16)}`
      + ` expected 0x${expected.toString(16)}`);

    return false;
  }
  return true;
}

/** After EOF, QEMU reads and drops the vmdesc so the sender is not cut off mid-write. */
function unitVmdesc(ls: LoadvmState, report: (m: string) => void): UnitResult {
  if (ls.sv.suppressVmdesc) return next(ls, 'loaded');
  const type = qemuGetByte(ls.f);
  if (type !== QEMU_VM_VMDESCRIPTION) {
    // Not fatal: the state itself loaded.
    report(`Expected vmdescription section, but got ${type}`);
    return next(ls, 'loaded');
  }
  ls.vmdescLeft = qemuGetBe32(ls.f);
  return next(ls, 'vmdesc-skip');
}

/** Skip the vmdesc without keeping it (its length may be anything: nothing is allocated). */
function unitVmdescSkip(ls: LoadvmState): UnitResult {
  const f = ls.f;
  const n = Math.min(ls.vmdescLeft, qemuFileAvail(f));
  qemuGetSkip(f, n);
  ls.vmdescLeft -= n;
  if (ls.vmdescLeft > 0 && !f.final) return 'need-more';
  return next(ls, 'loaded');
}

/**
 * Apply a loaded stream to the machine: every staged section in stream order (devices through
 * their entry's commit or vmstateCommit, iterable handlers through loadCommit). The load must
 * be `loaded`; commit cannot fail.
 */
export function loadvmCommit(ls: LoadvmState): void {
  assert(ls.phase === 'loaded', `loadvmCommit in phase ${ls.phase}`);
  for (const se of ls.order) {
    const staged = ls.staged.get(se);
    if (se.ops !== null) se.ops.loadCommit(staged);
    else if (se.commit !== null) se.commit(se.opaque, staged as VMStateStaged);
    else vmstateCommit(se.opaque!, staged as VMStateStaged);
  }
  ls.staged.clear();
  ls.phase = 'committed';
}

/** Entries whose state the loaded stream carried (for globalstate's "received" and callers). */
export function loadvmLoadedEntries(ls: LoadvmState): readonly SaveStateEntry[] {
  return ls.order;
}

/**
 * Load a complete stream and, if it is valid, apply it (loadvm of a snapshot, migration from
 * a file). On failure nothing changes.
 * @qemu migration/savevm.c qemu_loadvm_state
 */
export function qemuLoadvmState(sv: SaveVMState, bytes: Uint8Array): LoadvmResult {
  const ls = loadvmCreate(sv);
  loadvmFeed(ls, bytes);
  const phase = loadvmFeed(ls, null);
  if (phase !== 'loaded') {
    assert(phase === 'failed', `a final stream ended in phase ${phase}`);
    return { ok: false, error: ls.failure!, warnings: ls.warnings };
  }
  loadvmCommit(ls);
  return { ok: true, warnings: ls.warnings };
}
