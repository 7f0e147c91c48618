// Shared shape of benchmark results. Each bench/*.bench.ts module exports
// `run(): Promise<BenchRow[]>`; bench/run.ts runs them all (or those named on the command
// line), prints one table and writes bench/results/<name>.json.

/** One measured figure. `target` states the goal in words; `pass` is whether it was met. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  target?: string;
  pass?: boolean;
  note?: string;
}

/** Median and p99 of a sample (sorted copy; the input is not changed). */
export function percentiles(samples: number[]): { median: number; p99: number } {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { median: at(0.5), p99: at(0.99) };
}

/** Wall time of `fn` in milliseconds (benchmarks only: never in the kernel or tests). */
export async function timeMs(fn: () => unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}
