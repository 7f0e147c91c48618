// The savevm registry and the save side of QEMU 7.2's migration stream (migration/savevm.c):
// SaveStateEntry registration (vmstate_register, register_savevm_live), section headers and
// footers, and the save sequence header → setup → iterate* → complete (END sections, FULL
// sections with the vmdesc, EOF, vmdesc record) that savevm and live migration share.
// Invariants: handlers stay sorted by priority (higher first), registration order within one;
// section ids are unique per registry and never reused.

import { assert } from '../util/index.ts';
import { type MigrationFailure, strerror } from './errors.ts';
import { configurationStateCreate, vmstateConfiguration } from './configuration.ts';
import {
  type JSONWriter, jsonWriterEndArray, jsonWriterEndObject, jsonWriterGet, jsonWriterInt64,
  jsonWriterNew, jsonWriterStartArray, jsonWriterStartObject, jsonWriterStr,
} from './json-writer.ts';
import {
  type QEMUFileWriter, latin1Bytes, qemuFflush, qemuFileRateLimit, qemuFileSetError, qemuPutBe32,
  qemuPutBuffer, qemuPutByte, qemuPutCountedString,
} from './qemu-file.ts';
import { type QEMUFileReader } from './qemu-file-reader.ts';
import { vmstateSaveState, vmstateSectionNeeded } from './vmstate.ts';
import type { VMStateDescription, VMStateStaged } from './vmstate-types.ts';
import { TARGET_PAGE_SIZE } from '../memory/index.ts';

export const QEMU_VM_FILE_MAGIC = 0x5145564d;
export const QEMU_VM_FILE_VERSION_COMPAT = 0x00000002;
export const QEMU_VM_FILE_VERSION = 0x00000003;
export const QEMU_VM_EOF = 0x00;
export const QEMU_VM_SECTION_START = 0x01;
export const QEMU_VM_SECTION_PART = 0x02;
export const QEMU_VM_SECTION_END = 0x03;
export const QEMU_VM_SECTION_FULL = 0x04;
export const QEMU_VM_VMDESCRIPTION = 0x06;
export const QEMU_VM_CONFIGURATION = 0x07;
export const QEMU_VM_COMMAND = 0x08;
export const QEMU_VM_SECTION_FOOTER = 0x7e;
/** Pass as instance id to take 1 + the highest instance of the same idstr. */
export const VMSTATE_INSTANCE_ID_ANY = -1;

/** How one load applies what it reads. */
export interface LoadOptions {
  /**
   * Write guest RAM in place as it arrives (RamBlock.inPlaceLoad blocks), as QEMU does, instead
   * of staging it: for a machine that has not run since its reset and resets RAM if the load
   * fails (an incoming migration). Everything else is staged either way.
   */
  ramInPlace: boolean;
}

/**
 * An iterable ("live") handler, like RAM. Save side: QEMU's SaveVMHandlers. Load side, split so
 * that a stream arriving in pieces can be loaded record by record and applied atomically:
 * `loadSetup` makes the staged state of one load, `loadStart` checks a section's version,
 * `loadStep` consumes one record (returning 1 at the end of the section body, 0 for more, or
 * a negative errno), and `loadCommit` applies the staged state once the whole stream loaded.
 * `loadStep` must change `staged` only after every read of its record succeeded: it may be
 * rewound and run again when the record was incomplete.
 */
export interface SaveVMHandlers<L = unknown> {
  isActive?(): boolean;
  saveSetup?(f: QEMUFileWriter): number;
  /** Returns > 0 when everything is sent, 0 when more remains, < 0 on error. */
  saveLiveIterate?(f: QEMUFileWriter): number;
  /**
   * The END section's body. It may pause (yield) wherever `pause()` says so, and is resumed
   * later with the machine unchanged in between (the caller holds everything else off, as the
   * migration thread holding the BQL does); returns as saveLiveIterate.
   */
  saveLiveCompletePrecopy?(f: QEMUFileWriter, pause: () => boolean): Generator<void, number, void>;
  /** Bytes still to send; may sync dirty state when below `maxSize`. */
  saveLivePending?(maxSize: number): number;
  saveCleanup?(): void;
  loadSetup(opts: LoadOptions): L;
  loadStart?(staged: L, versionId: number, report: (msg: string) => void): number;
  loadStep(f: QEMUFileReader, staged: L, report: (msg: string) => void): number;
  loadCommit(staged: L): void;
}

/** @qemu migration/savevm.c SaveStateEntry */
export interface SaveStateEntry {
  idstr: string;
  instanceId: number;
  sectionId: number;
  versionId: number;
  priority: number;
  /** A device: its description and live state object. */
  vmsd: VMStateDescription | null;
  opaque: object | null;
  /** Applies a staged load to `opaque` (default: vmstateCommit). Must not fail. */
  commit: ((live: any, staged: VMStateStaged) => void) | null;
  /** An iterable handler. */
  ops: SaveVMHandlers | null;
}

/** The registry of one machine, with QEMU's migration globals. Runtime wiring, not VM state. */
export interface SaveVMState {
  handlers: SaveStateEntry[];
  globalSectionId: number;
  /** MachineClass name, sent in the configuration section ('virt'). */
  machineName: string;
  sendConfiguration: boolean;
  sendSectionFooter: boolean;
  suppressVmdesc: boolean;
}

export function savevmStateCreate(machineName: string): SaveVMState {
  return {
    handlers: [], globalSectionId: 0, machineName, sendConfiguration: true, sendSectionFooter: true,
    suppressVmdesc: false,
  };
}

/** @qemu calculate_new_instance_id */
function calculateNewInstanceId(sv: SaveVMState, idstr: string): number {
  let id = 0;
  for (const se of sv.handlers) {
    if (se.idstr === idstr && id <= se.instanceId) id = se.instanceId + 1;
  }
  return id;
}

/** The instance id to register under: explicit, or the next free one (VMSTATE_INSTANCE_ID_ANY). */
function instanceIdFor(sv: SaveVMState, idstr: string, instanceId: number): number {
  assert(idstr.length > 0 && idstr.length <= 255, `savevm idstr '${idstr}' must be 1..255 bytes`);
  if (instanceId === VMSTATE_INSTANCE_ID_ANY) return calculateNewInstanceId(sv, idstr);
  assert(Number.isInteger(instanceId) && instanceId >= 0 && instanceId <= 0xffffffff,
    `savevm '${idstr}': bad instance id ${instanceId}`);
  return instanceId;
}

/** @qemu savevm_state_handler_insert: after every entry of the same or a higher priority. */
function handlerInsert(sv: SaveVMState, se: SaveStateEntry): void {
  assert(!sv.handlers.some((h) => h.idstr === se.idstr && h.instanceId === se.instanceId),
    `savevm section '${se.idstr}' instance ${se.instanceId} registered twice`);
  const at = sv.handlers.findIndex((h) => h.priority < se.priority);
  if (at < 0) sv.handlers.push(se);
  else sv.handlers.splice(at, 0, se);
}

/**
 * Register a device's state: section idstr `vmsd.name` (prefixed with `devPath + '/'` when the
 * device has a qdev path, as PCI devices do), version `vmsd.versionId`. `commit` applies a
 * staged load when plain copying into `opaque` is not enough (timers to re-arm...).
 * @qemu migration/savevm.c vmstate_register_with_alias_id
 */
export function vmstateRegister<S extends object>(
  sv: SaveVMState, instanceId: number, vmsd: VMStateDescription<S>, opaque: S,
  opts: { devPath?: string; commit?: (live: S, staged: VMStateStaged) => void } = {},
): SaveStateEntry {
  const idstr = opts.devPath ? `${opts.devPath}/${vmsd.name}` : vmsd.name;
  const se: SaveStateEntry = {
    idstr, instanceId: instanceIdFor(sv, idstr, instanceId), sectionId: sv.globalSectionId++,
    versionId: vmsd.versionId, priority: vmsd.priority ?? 0, vmsd, opaque,
    commit: (opts.commit as SaveStateEntry['commit']) ?? null, ops: null,
  };
  handlerInsert(sv, se);
  return se;
}

/** Register an iterable handler such as RAM. @qemu migration/savevm.c register_savevm_live */
export function registerSavevmLive(
  sv: SaveVMState, idstr: string, instanceId: number, versionId: number, ops: SaveVMHandlers,
): SaveStateEntry {
  const se: SaveStateEntry = {
    idstr, instanceId: instanceIdFor(sv, idstr, instanceId), sectionId: sv.globalSectionId++,
    versionId, priority: 0, vmsd: null, opaque: null, commit: null, ops: ops as SaveVMHandlers,
  };
  handlerInsert(sv, se);
  return se;
}

/** Remove an entry (hot-unplug). @qemu vmstate_unregister / unregister_savevm */
export function savevmUnregister(sv: SaveVMState, se: SaveStateEntry): void {
  const i = sv.handlers.indexOf(se);
  assert(i >= 0, `savevm section '${se.idstr}' is not registered`);
  sv.handlers.splice(i, 1);
}

/**
 * The migration blocker a non-migratable device sets, or null.
 * @qemu migration/savevm.c qemu_savevm_state_blocked
 */
export function qemuSavevmStateBlocked(sv: SaveVMState): string | null {
  const se = sv.handlers.find((h) => h.vmsd?.unmigratable === true);
  return se ? `State blocked by non-migratable device '${se.idstr}'` : null;
}

/** @qemu save_section_header */
function saveSectionHeader(f: QEMUFileWriter, se: SaveStateEntry, type: number): void {
  qemuPutByte(f, type);
  qemuPutBe32(f, se.sectionId);
  if (type === QEMU_VM_SECTION_START || type === QEMU_VM_SECTION_FULL) {
    qemuPutCountedString(f, se.idstr);
    qemuPutBe32(f, se.instanceId);
    qemuPutBe32(f, se.versionId);
  }
}

/** @qemu save_section_footer */
function saveSectionFooter(sv: SaveVMState, f: QEMUFileWriter, se: SaveStateEntry): void {
  if (!sv.sendSectionFooter) return;
  qemuPutByte(f, QEMU_VM_SECTION_FOOTER);
  qemuPutBe32(f, se.sectionId);
}

function isActive(se: SaveStateEntry): boolean {
  return se.ops?.isActive === undefined || se.ops.isActive();
}

/** Magic, version and the configuration record. @qemu qemu_savevm_state_header */
export function qemuSavevmStateHeader(sv: SaveVMState, f: QEMUFileWriter): void {
  qemuPutBe32(f, QEMU_VM_FILE_MAGIC);
  qemuPutBe32(f, QEMU_VM_FILE_VERSION);
  if (sv.sendConfiguration) {
    qemuPutByte(f, QEMU_VM_CONFIGURATION);
    // 7.2 does not describe the configuration in the vmdesc.
    vmstateSaveState(f, vmstateConfiguration, configurationStateCreate(sv.machineName), null);
  }
}

/** START sections of the iterable handlers (RAM's block list). @qemu qemu_savevm_state_setup */
export function qemuSavevmStateSetup(sv: SaveVMState, f: QEMUFileWriter): void {
  for (const se of sv.handlers) {
    if (!se.ops?.saveSetup || !isActive(se)) continue;
    saveSectionHeader(f, se, QEMU_VM_SECTION_START);
    const ret = se.ops.saveSetup(f);
    saveSectionFooter(sv, f, se);
    if (ret < 0) {
      qemuFileSetError(f, ret);
      break;
    }
  }
}

/**
 * One pass of PART sections. Stops at the writer's rate limit and after a handler that has
 * more to send. Returns > 0 when every handler has sent everything, 0 when more remains, < 0
 * on error (after pushing QEMU's message onto `errs`).
 * @qemu qemu_savevm_state_iterate
 */
export function qemuSavevmStateIterate(
  sv: SaveVMState, f: QEMUFileWriter, errs: string[] = [],
): number {
  let ret = 1;
  for (const se of sv.handlers) {
    if (!se.ops?.saveLiveIterate || !isActive(se)) continue;
    if (qemuFileRateLimit(f)) return 0;
    saveSectionHeader(f, se, QEMU_VM_SECTION_PART);
    ret = se.ops.saveLiveIterate(f);
    saveSectionFooter(sv, f, se);
    if (ret < 0) {
        errs.push(`failed to save SaveStateEntry with id(name): ${se.sectionId}(${se.idstr}):`
        + ` ${ret}`);

      qemuFileSetError(f, ret);
    }
    // Serialize: do not start the next handler before this one reported completion.
    if (ret <= 0) break;
  }
  return ret;
}

/** Bytes the iterable handlers still have to send. @qemu qemu_savevm_state_pending */
export function qemuSavevmStatePending(sv: SaveVMState, maxSize: number): number {
  let total = 0;
  for (const se of sv.handlers) {
    if (!se.ops?.saveLivePending || !isActive(se)) continue;
    total += se.ops.saveLivePending(maxSize);
  }
  return total;
}

/**
 * Stop-and-copy: END sections, then every device as a FULL section, EOF and the vmdesc.
 * Returns the writer's error (0 when all went well).
 * @qemu qemu_savevm_state_complete_precopy
 */
export function qemuSavevmStateCompletePrecopy(
  sv: SaveVMState, f: QEMUFileWriter, errs: string[] = [],
): number {
  const steps = qemuSavevmStateCompletePrecopySteps(sv, f, errs, () => false);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * The same in steps: it yields whenever `pause()` is true between two pages of an END section
 * (a live migration whose channel is backed up), and is resumed with nothing else changed.
 */
export function* qemuSavevmStateCompletePrecopySteps(
  sv: SaveVMState, f: QEMUFileWriter, errs: string[], pause: () => boolean,
): Generator<void, number, void> {
  for (const se of sv.handlers) {
    if (!se.ops?.saveLiveCompletePrecopy || !isActive(se)) continue;
    saveSectionHeader(f, se, QEMU_VM_SECTION_END);
    const ret = yield* se.ops.saveLiveCompletePrecopy(f, pause);
    saveSectionFooter(sv, f, se);
    if (ret < 0) {
      qemuFileSetError(f, ret);
      return -1;
    }
  }
  const ret = completePrecopyNonIterable(sv, f, errs);
  if (ret < 0) return ret;
  qemuFflush(f);
  return f.error;
}

/** @qemu qemu_savevm_state_complete_precopy_non_iterable */
function completePrecopyNonIterable(sv: SaveVMState, f: QEMUFileWriter, errs: string[]): number {
  const vmdesc: JSONWriter = jsonWriterNew();
  jsonWriterStartObject(vmdesc, null);
  jsonWriterInt64(vmdesc, 'page_size', TARGET_PAGE_SIZE);
  jsonWriterStartArray(vmdesc, 'devices');
  for (const se of sv.handlers) {
    if (se.vmsd === null || se.opaque === null) continue;
    if (!vmstateSectionNeeded(se.vmsd, se.opaque)) continue;
    jsonWriterStartObject(vmdesc, null);
    jsonWriterStr(vmdesc, 'name', se.idstr);
    jsonWriterInt64(vmdesc, 'instance_id', se.instanceId);
    saveSectionHeader(f, se, QEMU_VM_SECTION_FULL);
    const ret = vmstateSaveState(f, se.vmsd, se.opaque, vmdesc, errs);
    if (ret) {
      qemuFileSetError(f, ret);
      return ret;
    }
    saveSectionFooter(sv, f, se);
    jsonWriterEndObject(vmdesc);
  }
  qemuPutByte(f, QEMU_VM_EOF);
  jsonWriterEndArray(vmdesc);
  jsonWriterEndObject(vmdesc);
  if (!sv.suppressVmdesc) {
    const json = vmdescForAnalyzer(jsonWriterGet(vmdesc));
    qemuPutByte(f, QEMU_VM_VMDESCRIPTION);
    qemuPutBe32(f, json.length);
    qemuPutBuffer(f, latin1Bytes(json));
  }
  return 0;
}

/**
 * scripts/analyze-migration.py finds the vmdesc as the first '{' after the last NUL byte of the
 * file, so a '{' (0x7b) in the be32 length after its last zero byte would mislead it. Pad the
 * JSON with spaces until the length is safe (QEMU does not; its descriptions are rarely that long).
 */
function vmdescForAnalyzer(json: string): string {
  let s = json;
  for (let i = 0; i < 8; i++) {
    const len = s.length;
    const bytes = [(len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff];
    const lastZero = bytes.lastIndexOf(0);
    if (!bytes.slice(lastZero + 1).includes(0x7b)) return s;
    s += ' ';
  }
  assert(false, 'could not pad the vmdesc to a length the analyzer can locate');
}

/** @qemu qemu_savevm_state_cleanup */
export function qemuSavevmStateCleanup(sv: SaveVMState): void {
  for (const se of sv.handlers) se.ops?.saveCleanup?.();
}

/**
 * The whole non-live save that savevm and a migration of a stopped VM use: header, setup,
 * iterate until every handler is done, complete, cleanup. The writer must have no rate limit.
 * Returns null, or the failure with QEMU's "Error while writing VM state: ..." last.
 * @qemu migration/savevm.c qemu_savevm_state
 */
export function qemuSavevmState(sv: SaveVMState, f: QEMUFileWriter): MigrationFailure | null {
  assert(f.rateLimitMax === 0, 'qemuSavevmState: a snapshot is written without a rate limit');
  const errs: string[] = [];
  qemuSavevmStateHeader(sv, f);
  qemuSavevmStateSetup(sv, f);
  // Without a rate limit each pass sends every dirty page; the stopped VM dirties none, so the
  // second pass at the latest reports completion.
  for (let pass = 0; f.error === 0; pass++) {
    assert(pass < 1000, 'savevm: iterable handlers never reported completion');
    if (qemuSavevmStateIterate(sv, f, errs) > 0) break;
  }
  let ret = f.error;
  if (ret === 0) {
    qemuSavevmStateCompletePrecopy(sv, f, errs);
    ret = f.error;
  }
  qemuSavevmStateCleanup(sv);
  if (ret === 0) return null;
  errs.push(`Error while writing VM state: ${strerror(-ret)}`);
  return { ret, messages: errs };
}
