// The trace (core/trace): exporters produce valid JSON / well-nested trees, the running hash is
// a function of the records only (identical across two runs of the same seeded workload, for
// 1,000 seeds), differs when anything differs, and levels filter records. Method: the seeded
// kernel workload of test/support/workload.ts.
import { describe, expect, it } from 'vitest';
import { runWorkload } from '../../support/workload.ts';
import {
  traceHash, exportJsonLines, exportCallTree, exportChromeTrace, traceEnter, traceExit, traceEvent, traceSpan,
  TRACE_CONTROL, TRACE_DEVICES,
} from '../../../core/trace/index.ts';
import { loopMachineCreate } from '../../../core/loop/index.ts';
import { AssertionError } from '../../../core/util/index.ts';

const SEEDS = Number(process.env.TRACE_SEEDS ?? 1000);

describe('trace', () => {
  it(`hash is identical across two runs for ${SEEDS} seeds`, () => {
    const hashes = new Set<string>();
    for (let seed = 0; seed < SEEDS; seed++) {
      const a = runWorkload(seed, { durationNs: 5_000_000 });
      const b = runWorkload(seed, { durationNs: 5_000_000 });
      const ha = traceHash(a.m.trace);
      expect(traceHash(b.m.trace), `seed ${seed}`).toBe(ha);
      expect(b.m.trace.seq, `seed ${seed}`).toBe(a.m.trace.seq);
      hashes.add(ha);
    }
    // Different seeds make different workloads: nearly all hashes differ.
    expect(hashes.size).toBeGreaterThan(SEEDS * 0.99);
  });

  it('exports valid JSON lines, a well-nested call tree and a Chrome trace', () => {
    const { m } = runWorkload(42, { retain: true, durationNs: 3_000_000 });
    const recs = m.trace.records!;
    expect(recs.length).toBeGreaterThan(100);
    const lines = exportJsonLines(recs).trimEnd().split('\n');
    expect(lines.length).toBe(recs.length);
    let depth = 0;
    for (const [i, line] of lines.entries()) {
      const o = JSON.parse(line) as { seq: number; kind: string; name: string };
      expect(o.seq).toBe(recs[i]!.seq);
      depth += o.kind === 'enter' ? 1 : o.kind === 'exit' ? -1 : 0;
      expect(depth).toBeGreaterThanOrEqual(0);
    }
    expect(depth).toBe(0);
    const chrome = JSON.parse(exportChromeTrace(recs)) as { traceEvents: Array<{ ph: string; ts: number }> };
    expect(chrome.traceEvents.length).toBe(recs.length);
    expect(new Set(chrome.traceEvents.map((e) => e.ph))).toEqual(new Set(['B', 'E', 'i']));
    for (let i = 1; i < chrome.traceEvents.length; i++) {
      expect(chrome.traceEvents[i]!.ts).toBeGreaterThanOrEqual(chrome.traceEvents[i - 1]!.ts);
    }
    const tree = exportCallTree(recs);
    expect(tree.startsWith('- main_loop_wait (iteration=1)\n  - os_host_main_loop_wait\n')).toBe(true);
  });

  it('the hash changes with any change of a record', () => {
    const a = loopMachineCreate({ trace: { level: 1 } });
    const b = loopMachineCreate({ trace: { level: 1 } });
    traceEvent(a, TRACE_CONTROL, 'x', { v: 1 });
    traceEvent(b, TRACE_CONTROL, 'x', { v: 2 });
    expect(traceHash(a.trace)).not.toBe(traceHash(b.trace));
    expect(a.trace.records![0]!.hash).toBe(traceHash(a.trace));
  });

  it('levels filter records; off records nothing', () => {
    const off = loopMachineCreate();
    const ctl = loopMachineCreate({ trace: { level: 1 } });
    const dev = loopMachineCreate({ trace: { level: 2 } });
    for (const m of [off, ctl, dev]) {
      traceEvent(m, TRACE_CONTROL, 'control');
      traceEvent(m, TRACE_DEVICES, 'device');
    }
    expect(off.trace.seq).toBe(0);
    expect(ctl.trace.records!.map((r) => r.name)).toEqual(['control']);
    expect(dev.trace.records!.map((r) => r.name)).toEqual(['control', 'device']);
  });

  it('an exit that does not match the open span is an assertion; traceSpan unwinds on throw', () => {
    const m = loopMachineCreate({ trace: { level: 1 } });
    const o = traceEnter(m, TRACE_CONTROL, 'outer');
    expect(() => traceExit(m, o, 'inner')).toThrow(AssertionError);
    const m2 = loopMachineCreate({ trace: { level: 1 } });
    expect(() =>
      traceSpan(m2, TRACE_CONTROL, 'outer', undefined, () => {
        traceEnter(m2, TRACE_CONTROL, 'leaked');
        throw new Error('boom');
      })).toThrow('boom');
    expect(m2.trace.stack).toEqual([]);
    expect(m2.trace.records!.map((r) => `${r.kind}:${r.name}`)).toEqual(['enter:outer', 'enter:leaked', 'exit:leaked', 'exit:outer']);
  });
});
