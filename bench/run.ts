// npm run bench [name...]: runs bench/*.bench.ts, prints a table, writes bench/results/*.json.
import { readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchRow } from './harness.ts';

const here = dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.startsWith(w)))
  .sort();
if (files.length === 0) {
  console.error(`no benchmark matches ${wanted.join(' ')}; have: ${readdirSync(here).join(' ')}`);
  process.exit(2);
}
const outDir = join(here, 'results');
mkdirSync(outDir, { recursive: true });
const all: Array<BenchRow & { bench: string }> = [];
for (const f of files) {
  const name = f.replace(/\.bench\.ts$/, '');
  const mod = (await import(pathToFileURL(join(here, f)).href)) as { run: () => Promise<BenchRow[]> };
  const rows = await mod.run();
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify({ bench: name, node: process.version, rows }, null, 2) + '\n');
  for (const r of rows) all.push({ bench: name, ...r });
}
const fmt = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(4));
const table = all.map((r) => ({
  bench: r.bench,
  measure: r.name,
  value: `${fmt(r.value)} ${r.unit}`,
  target: r.target ?? '',
  met: r.pass === undefined ? '' : r.pass ? 'yes' : 'NO',
  note: r.note ?? '',
}));
console.table(table);
console.log(`results written to ${outDir}`);
