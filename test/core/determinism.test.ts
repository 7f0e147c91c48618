// Guards DESIGN.md §5-§6: nothing under core/, chardev/ or monitor/ (except core/host/, the host
// adapters) reads real time, uses real timers or randomness, touches host I/O modules, or (in
// core/) uses async code. Method: scan the sources with comments and strings removed.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

function files(dir: string): string[] {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Remove comments and string/template literal contents, keeping line structure. */
function codeOnly(src: string): string {
  return src
    .replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' '))
    .replace(/\/\/[^\n]*/g, '')
    .replace(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g, (s) => s.replace(/[^\n]/g, ' '));
}

const BANNED_TIME = [
  /\bDate\.now\b/, /\bnew Date\b/, /\bDate\(/, /\bperformance\.now\b/, /\bprocess\.hrtime\b/, /\bsetTimeout\b/,
  /\bsetInterval\b/, /\bsetImmediate\b/, /\bqueueMicrotask\b/, /\bprocess\.nextTick\b/, /\bMath\.random\b/,
  /\bcrypto\.(?:random|getRandom)/, /\brandomBytes\b/, /\brandomUUID\b/, /\bgetRandomValues\b/,
];
const BANNED_IO = /from\s+['"](?:node:)?(?:net|fs|fs\/promises|child_process|dgram|tty|os|worker_threads|http|https)['"]/;
const BANNED_PROCESS = /\bprocess\.(?:stdin|stdout|stderr|env|argv|exit|on)\b/;
const BANNED_ASYNC = [/\basync\b/, /\bawait\b/, /\bPromise\b/];

function scan(dirs: string[], patterns: RegExp[]): string[] {
  const hits: string[] = [];
  for (const d of dirs) {
    for (const f of files(join(root, d))) {
      const rel = relative(root, f);
      if (rel.startsWith('core/host/') || rel.startsWith('core\\host\\')) continue;
      const lines = codeOnly(readFileSync(f, 'utf8')).split('\n');
      lines.forEach((line, i) => {
        for (const p of patterns) if (p.test(line)) hits.push(`${rel}:${i + 1}: ${p.source}`);
      });
    }
  }
  return hits;
}

describe('determinism guard', () => {
  it('finds the kernel sources it scans', () => {
    expect(files(join(root, 'core')).length).toBeGreaterThan(10);
  });

  it('no real time, real timers or randomness outside core/host/', () => {
    expect(scan(['core', 'chardev', 'monitor'], BANNED_TIME)).toEqual([]);
  });

  it('no host I/O modules outside core/host/', () => {
    expect(scan(['core', 'chardev', 'monitor'], [BANNED_IO, BANNED_PROCESS])).toEqual([]);
  });

  it('no async code in the kernel (core/ outside core/host/)', () => {
    expect(scan(['core'], BANNED_ASYNC)).toEqual([]);
  });

  it('the scanner itself catches a planted leak', () => {
    const planted = codeOnly("const t = Date.now(); // setTimeout in a comment\nconst s = 'Math.random';\n");
    expect(BANNED_TIME.some((p) => p.test(planted.split('\n')[0]!))).toBe(true);
    expect(BANNED_TIME.some((p) => p.test(planted.split('\n')[1]!))).toBe(false);
  });
});
