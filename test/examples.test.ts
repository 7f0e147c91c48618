// The runnable examples (examples/*.ts, the README's snippets) run in the suite: each exits 0,
// and, being deterministic, prints exactly the same output on a second run. Method: spawn tsx.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const tsx = join(root, 'node_modules', '.bin', 'tsx');
const examples = readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.ts')).sort();

describe('examples', () => {
  it.each(examples)('%s runs and prints the same thing twice', (name) => {
    const run = (): string => execFileSync(tsx, [join('examples', name)], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    const a = run();
    expect(a.length).toBeGreaterThan(0);
    expect(run()).toBe(a);
  });
});
