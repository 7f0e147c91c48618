// detvm-analyze FILE [--vmdesc] [--extract-ram DIR]: walk a migration stream (detvm's or QEMU
// 7.2's) and list its records (core/migration/analyze.ts), print its vmdesc JSON, or write
// each RAM block's pages to DIR/<block idstr> (sparse files of the block's length, like
// analyze-migration.py -x). `analyzeMain` is what `detvm analyze` calls; run directly with
// `npx tsx bin/detvm-analyze.ts`. Exit status: 0 when the walk reached the end, 1 if not, 2 on
// bad usage.

import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyzeMigrationStream, type AnalyzeRamBlock } from '../core/migration/index.ts';

const USAGE = 'usage: detvm-analyze FILE [--vmdesc] [--extract-ram DIR]\n';
/** Largest block file written (a corrupt MEM_SIZE could claim exabytes). */
const EXTRACT_BLOCK_MAX = 2 ** 40;

export interface AnalyzeIo {
  out(s: string): void;
  err(s: string): void;
}

/** Path of a block's file under `dir`: idstr components, refusing ones that would escape it. */
function blockPath(dir: string, idstr: string): string | null {
  const parts = idstr.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return null;
  return join(dir, ...parts);
}

function extractBlock(dir: string, b: AnalyzeRamBlock, io: AnalyzeIo): boolean {
  const path = blockPath(dir, b.idstr);
  const size = Math.max(b.length, ...[...(b.pages?.keys() ?? [])].map((o) => o + 4096));
  if (path === null || size > EXTRACT_BLOCK_MAX) {
    const why = path === null ? 'unsafe name' : `${size} bytes`;
    io.err(`detvm-analyze: not extracting RAM block '${b.idstr}' (${why})\n`);

    return false;
  }
  mkdirSync(dirname(path), { recursive: true });
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    for (const [offset, v] of b.pages ?? []) {
      if (typeof v === 'number') {
        if (v !== 0) writeSync(fd, new Uint8Array(4096).fill(v), 0, 4096, offset);
      } else {
        writeSync(fd, v, 0, v.length, offset);
      }
    }
  } finally {
    closeSync(fd);
  }
  io.out(`${path}\n`);
  return true;
}

/** Run the analyzer on `argv` (without the program name). Returns the exit status. */
export function analyzeMain(argv: string[], io: AnalyzeIo): number {
  let file: string | null = null;
  let vmdesc = false;
  let extractDir: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--vmdesc') vmdesc = true;
    else if (a === '--extract-ram' && i + 1 < argv.length) extractDir = argv[++i]!;
    else if (!a.startsWith('-') && file === null) file = a;
    else {
      io.err(USAGE);
      return 2;
    }
  }
  if (file === null) {
    io.err(USAGE);
    return 2;
  }
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(file));
  } catch (e) {
    io.err(`detvm-analyze: ${file}: ${(e as Error).message}\n`);
    return 1;
  }
  const r = analyzeMigrationStream(bytes, { extractRam: extractDir !== null });
  if (vmdesc) {
    if (r.vmdescJson === null) {
      io.err('detvm-analyze: no vmdesc found\n');
      return 1;
    }
    io.out(`${r.vmdescJson}\n`);
  } else {
    io.out(r.lines.map((l) => `${l}\n`).join(''));
  }
  let ok = r.error === null;
  if (extractDir !== null) {
    for (const b of r.ramBlocks) ok = extractBlock(resolve(extractDir), b, io) && ok;
  }
  return ok ? 0 : 1;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = analyzeMain(process.argv.slice(2), {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
  });
}
