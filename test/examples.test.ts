// The runnable examples (examples/*.ts, the README's snippets) run in the suite: each exits 0,
// and, being deterministic, prints exactly the same output on a second run. Method: spawn tsx.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');
const examples = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.ts')).sort();

/** What each example must show, beyond running twice alike (issue 10's list). */
const SHOWS: Record<string, RegExp[]> = {
  'qmp-flow.ts': [/status: 'paused'/, /VM status: paused/, /event RESUME at/, /tick \d+ hart 1/],
  'trace-cont.ts': [/hmp_cont/, /vm_start/, /VM status: running; trace hash [0-9a-f]{16}/],
  'record-replay.ts': [/same trace: true/, /same state: true/, /same bytes to the QMP client: true/, /divergence: none/],
  'readme-library.ts': [/VM status: paused/],
};

describe('examples', () => {
  it('the three of issue 10 are there: a QMP client flow, the call tree of cont, record then replay', () => {
    expect(examples).toEqual(expect.arrayContaining(['qmp-flow.ts', 'trace-cont.ts', 'record-replay.ts']));
  });

  it.each(examples)('%s runs and prints the same thing twice', (name) => {
    const run = (): string => execFileSync(tsx, [join('examples', name)], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    const a = run();
    expect(a.length).toBeGreaterThan(0);
    for (const re of SHOWS[name] ?? []) expect(a).toMatch(re);
    expect(run()).toBe(a);
  });
});
