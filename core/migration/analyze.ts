// A structural walk of any QEMU 7.2-format migration stream (detvm's or QEMU's): every record
// with its offset, RAM records counted by kind, the vmdesc summary and per-block page counts,
// in the format of shared/streams/*.dump.txt; optionally the RAM pages themselves. Like QEMU's
// scripts/analyze-migration.py it needs the vmdesc (found as that script finds it: the first
// '{' after the last NUL byte, preceded by 0x06 and a be32 length) to know how long each
// device section is, since the stream does not say. Pure: bytes in, text and pages out.
// Invariant: the walk never reads outside `bytes`; a malformed stream ends in an ERROR line.

import { WalkError, bytes, counted, u16, u32, u8 } from './analyze-cursor.ts';
import { pyBytesRepr, pyDecode, pyListRepr, pyStrRepr, recordLine } from './analyze-format.ts';
import { type AnalyzeRamBlock, type RamWalk, walkRam } from './analyze-ram.ts';
import {
  QEMU_VM_COMMAND, QEMU_VM_CONFIGURATION, QEMU_VM_EOF, QEMU_VM_FILE_MAGIC, QEMU_VM_SECTION_END,
  QEMU_VM_SECTION_FOOTER, QEMU_VM_SECTION_FULL, QEMU_VM_SECTION_PART, QEMU_VM_SECTION_START,
  QEMU_VM_VMDESCRIPTION,
} from './savevm.ts';
import { QEMU_VM_SUBSECTION } from './vmstate.ts';

export type { AnalyzeRamBlock } from './analyze-ram.ts';

/** Nesting of vmdesc structs and subsections the walker follows (QEMU's are a few deep). */
const VMDESC_DEPTH_MAX = 32;

export interface AnalyzeResult {
  /** The walk, one record per line. */
  lines: string[];
  /** null when the walk reached the end; else what stopped it (also the last line). */
  error: string | null;
  /** The vmdesc JSON of the stream's VMDESCRIPTION record (or as located, if the walk failed). */
  vmdescJson: string | null;
  ramBlocks: AnalyzeRamBlock[];
}

/**
 * Find the vmdesc as analyze-migration.py does.
 * @qemu scripts/analyze-migration.py read_migration_debug_json
 */
export function locateVmdesc(b: Uint8Array): string | null {
  const start = Math.max(0, b.length - 10 * 1024 * 1024);
  const data = b.subarray(start);
  const nul = data.lastIndexOf(0);
  const json = data.indexOf(0x7b, nul < 0 ? data.length - 1 : nul);
  if (json < 5 || data[json - 5] !== QEMU_VM_VMDESCRIPTION) return null;
  const len = new DataView(data.buffer, data.byteOffset + json - 4, 4).getUint32(0);
  return pyDecode(data.subarray(json, Math.min(data.length, json + len)));
}

interface Walk extends RamWalk {
  lines: string[];
  vmdesc: { page_size?: unknown; devices?: unknown; configuration?: unknown } | null;
  /** Section id → its name and whether it is RAM, from START/FULL headers. */
  sections: Map<number, { name: string; ram: boolean }>;
  lastSectionId: number;
}

/**
 * Walk `bytes` as a migration stream. With `extractRam`, collect every block's pages.
 */
export function analyzeMigrationStream(
  bytesIn: Uint8Array, opts: { extractRam?: boolean } = {},
): AnalyzeResult {
  const located = locateVmdesc(bytesIn);
  let vmdesc: Walk['vmdesc'] = null;
  try {
    vmdesc = located === null ? null : (JSON.parse(located) as Walk['vmdesc']);
  } catch {
    vmdesc = null;
  }
  const w: Walk = {
    c: { b: bytesIn, p: 0 }, lines: [], vmdesc,
    pageSize: typeof vmdesc?.page_size === 'number' ? vmdesc.page_size : 4096,
    extract: opts.extractRam === true, blocks: [], lastBlock: null, sections: new Map(),
    lastSectionId: -1,
  };
  let error: string | null = null;
  let vmdescJson = located;
  try {
    vmdescJson = walkStream(w) ?? located;
  } catch (e) {
    if (!(e instanceof WalkError)) throw e;
    error = e.message;
    w.lines.push(recordLine(w.c.p, 'ERROR', e.message));
  }
  return { lines: w.lines, error, vmdescJson, ramBlocks: w.blocks };
}

/** The whole walk; returns the vmdesc JSON of the VMDESCRIPTION record, if any. */
function walkStream(w: Walk): string | null {
  const c = w.c;
  const n = c.b.length;
  if (n < 8) throw new WalkError(`stream of ${n} bytes is shorter than its header`);
  const magic = u32(c);
  const version = u32(c);
  const magicHex = magic.toString(16).padStart(8, '0');
  const magicRepr = pyBytesRepr(c.b.subarray(0, 4));
  w.lines.push(`size ${n} bytes, magic 0x${magicHex} (${magicRepr}), version ${version}`);
  if (magic !== QEMU_VM_FILE_MAGIC) throw new WalkError('not a migration stream (bad magic)');
  if (version !== 3) throw new WalkError(`unsupported stream version ${version}`);
  for (;;) {
    const off = c.p;
    const type = u8(c);
    if (type === QEMU_VM_EOF) {
      w.lines.push(recordLine(off, 'EOF', ''));
      break;
    }
    walkRecord(w, off, type);
  }
  let json: string | null = null;
  if (c.p < n) {
    const off = c.p;
    const type = u8(c);
    if (type !== QEMU_VM_VMDESCRIPTION) {
      throw new WalkError(`expected the vmdesc after EOF, got byte 0x${type.toString(16)}`);
    }
    const len = u32(c);
    json = pyDecode(bytes(c, len));
    w.lines.push(...vmdescLines(off, json));
  }
  w.lines.push(`  trailing bytes after last record: ${n - c.p}`);
  if (w.blocks.length > 0) {
    const counts = w.blocks.map((b) => `${b.idstr}: zero=${b.zero} normal=${b.normal}`);
    w.lines.push(`  RAM pages per block: ${counts.join(', ')}`);
  }
  return json;
}

function vmdescLines(off: number, json: string): string[] {
  let d: unknown;
  try {
    d = JSON.parse(json);
  } catch (e) {
    throw new WalkError(`vmdesc of ${json.length} bytes is not JSON: ${(e as Error).message}`);
  }
  if (typeof d !== 'object' || d === null || Array.isArray(d)) {
    throw new WalkError('vmdesc is not a JSON object');
  }
  const o = d as Record<string, unknown>;
  const devices = Array.isArray(o.devices) ? (o.devices as Array<Record<string, unknown>>) : [];
  const version = (d: Record<string, unknown>): string => {
    return 'version' in d ? String(d.version) : 'None';
  };

  const list = devices.map((d) => `${String(d.name)}/${String(d.instance_id)} v${version(d)}`);
  const at = off.toString(16).padStart(6, '0');
  const keys = pyListRepr(Object.keys(o));
  return [
    `  @0x${at} VMDESCRIPTION json_length=${json.length} page_size=${String(o.page_size)}`
      + ` keys=${keys}`,

    `      devices: ${list.join(', ')}`,
  ];
}

function walkRecord(w: Walk, off: number, type: number): void {
  const c = w.c;
  switch (type) {
    case QEMU_VM_CONFIGURATION:
      w.lines.push(recordLine(off, 'CONFIGURATION', `machine=${pyStrRepr(walkConfiguration(w))}`));
      return;
    case QEMU_VM_SECTION_START:
    case QEMU_VM_SECTION_FULL: {
      const id = u32(c);
      const name = counted(c);
      const instance = u32(c);
      const version = u32(c);
      const kind = type === QEMU_VM_SECTION_START ? 'SECTION_START' : 'SECTION_FULL';
      const head = `id=${id} name=${pyStrRepr(name)} instance=${instance} version=${version}`;
      const ram = name === 'ram' && instance === 0;
      w.sections.set(id, { name, ram });
      w.lastSectionId = id;
      if (ram) {
        const r = walkRam(w);
        w.lines.push(recordLine(off, kind, `${head} ram=${r.counters}`), ...r.extra);
        return;
      }
      const start = c.p;
      walkDevice(w, name, instance);
      w.lines.push(recordLine(off, kind, `${head} payload=${c.p - start}B`));
      return;
    }
    case QEMU_VM_SECTION_PART:
    case QEMU_VM_SECTION_END: {
      const id = u32(c);
      const kind = type === QEMU_VM_SECTION_PART ? 'SECTION_PART' : 'SECTION_END';
      const s = w.sections.get(id);
      if (s === undefined) {
        throw new WalkError(`${kind} for section id ${id}, which no START introduced`);
      }
      if (!s.ram) {
        throw new WalkError(`${kind} of '${s.name}': only RAM sections can be walked in parts`);
      }
      w.lastSectionId = id;
      const r = walkRam(w);
      const detail = `id=${id} name=${pyStrRepr(s.name)} ram=${r.counters}`;
      w.lines.push(recordLine(off, kind, detail), ...r.extra);
      return;
    }
    case QEMU_VM_SECTION_FOOTER: {
      const id = u32(c);
      if (id !== w.lastSectionId) {
        throw new WalkError(`mismatched section footer: id ${id}, section ${w.lastSectionId}`);
      }
      w.lines.push(recordLine(off, 'SECTION_FOOTER', `id=${id}`));
      return;
    }
    case QEMU_VM_COMMAND: {
      const cmd = u16(c);
      const len = u16(c);
      bytes(c, len);
      w.lines.push(recordLine(off, 'COMMAND', `cmd=0x${cmd.toString(16)} len=${len}`));
      return;
    }
    default:
      throw new WalkError(`unknown section type ${type}`);
  }
}

/** The configuration record: by its vmdesc entry when there is one (QEMU 8.2+), else len + name. */
function walkConfiguration(w: Walk): string {
  const c = w.c;
  const desc = w.vmdesc?.configuration;
  if (typeof desc === 'object' && desc !== null) {
    // Its fields are `len` (uint32) then `name` (len bytes).
    const start = c.p;
    walkVmsd(w, desc as Record<string, unknown>, 0);
    const len = new DataView(c.b.buffer, c.b.byteOffset + start, 4).getUint32(0);
    return pyDecode(c.b.subarray(start + 4, Math.min(c.p, start + 4 + len)));
  }
  const name = pyDecode(bytes(c, u32(c)));
  // 7.2 sends no configuration subsections for riscv, but accept target-page-bits.
  while (c.p + 1 < c.b.length && c.b[c.p] === QEMU_VM_SUBSECTION) {
    c.p++;
    const sub = counted(c);
    if (sub !== 'configuration/target-page-bits') {
      throw new WalkError(`unknown configuration subsection ${pyStrRepr(sub)}`);
    }
    u32(c);
    u32(c);
  }
  return name;
}

/** A device section, sized by its vmdesc entry. */
function walkDevice(w: Walk, name: string, instance: number): void {
  const devices = w.vmdesc?.devices;
  if (!Array.isArray(devices)) {
    throw new WalkError(`section ${pyStrRepr(name)} needs the vmdesc, which was not found`);
  }
  const dev = (devices as Array<Record<string, unknown>>)
    .find((d) => d.name === name && d.instance_id === instance);
  if (dev === undefined) {
    throw new WalkError(`section ${pyStrRepr(name)} instance ${instance} is not in the vmdesc`);
  }
  walkVmsd(w, dev, 0);
}

function walkVmsd(w: Walk, desc: Record<string, unknown>, depth: number): void {
  if (depth > VMDESC_DEPTH_MAX) throw new WalkError('vmdesc nests too deep');
  const fields = desc.fields;
  if (!Array.isArray(fields)) {
    throw new WalkError(`vmdesc entry ${String(desc.vmsd_name ?? desc.name)} has no fields`);
  }
  for (const f of fields as Array<Record<string, unknown>>) {
    const count = typeof f.array_len === 'number' ? f.array_len : 1;
    for (let i = 0; i < count; i++) walkField(w, f, depth);
  }
  const subs = desc.subsections;
  if (!Array.isArray(subs)) return;
  for (const sub of subs as Array<Record<string, unknown>>) {
    const at = w.c.p;
    if (u8(w.c) !== QEMU_VM_SUBSECTION) {
      throw new WalkError(`subsection ${String(sub.vmsd_name)} not found at 0x${at.toString(16)}`);

    }
    counted(w.c);
    u32(w.c);
    walkVmsd(w, sub, depth + 1);
  }
}

function walkField(w: Walk, f: Record<string, unknown>, depth: number): void {
  if (f.type === 'struct') {
    if (typeof f.struct !== 'object' || f.struct === null) {
      throw new WalkError(`struct field ${String(f.name)} has no description`);
    }
    walkVmsd(w, f.struct as Record<string, unknown>, depth + 1);
    return;
  }
  if (f.type === 'capability') {
    bytes(w.c, u8(w.c));
    return;
  }
  const size = f.size;
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 0) {
    throw new WalkError(`field ${String(f.name)} has no usable size`);
  }
  bytes(w.c, size);
}
