// Replays the real-QEMU 7.2.22 conformance transcripts that need no real guest against the fake
// machine over an in-memory chardev: send NAME.tx.bin in its recorded chunks, compare everything
// received with NAME.rx.bin, masking only the volatile parts the conformance README lists.

import { describe, expect, it } from 'vitest';
import { hmpOnPeer, monitorEnvCreate, qmpOnPeer } from '../support/monitor-env.ts';
import { loadTranscript, replayTranscript, type MaskOptions } from '../support/transcript.ts';
import { registerLaterCommandStandIns } from '../support/monitor-later-commands.ts';
import type { FakeMachineOptions } from '../support/fake-machine.ts';

interface Case {
  name: string;
  kind: 'hmp' | 'qmp';
  machine?: FakeMachineOptions;
  mask?: MaskOptions;
}

function helpFilter(env: ReturnType<typeof monitorEnvCreate>): MaskOptions['helpFilter'] {
  const names = (t: { name: string }[]): string[] => t.map((c) => c.name);
  return { main: names(env.mons.hmpCmds), info: names(env.mons.hmpInfoCmds) };
}

const CASES: Case[] = [
  { name: 'hmp-banner', kind: 'hmp' },
  { name: 'hmp-info-status', kind: 'hmp' },
  { name: 'hmp-unknown', kind: 'hmp', mask: { helpFilter: { main: [], info: [] } } },
  { name: 'hmp-lineedit', kind: 'hmp' },
  { name: 'hmp-line-endings', kind: 'hmp' },
  { name: 'hmp-help-stop', kind: 'hmp', mask: { helpFilter: { main: [], info: [] } } },
  { name: 'hmp-info-cpus', kind: 'hmp' },
  { name: 'hmp-info-cpus-smp2', kind: 'hmp', machine: { cpus: 2 } },
  { name: 'hmp-info-registers', kind: 'hmp', mask: { registers: true } },
  { name: 'hmp-system-reset', kind: 'hmp' },
  { name: 'hmp-snapshots-nodisk', kind: 'hmp' },
  { name: 'hmp-quit', kind: 'hmp' },
  { name: 'qmp-greeting', kind: 'qmp' },
  { name: 'qmp-negotiation', kind: 'qmp' },
  { name: 'qmp-status', kind: 'qmp' },
  { name: 'qmp-errors', kind: 'qmp' },
  { name: 'qmp-quit', kind: 'qmp' },
];

describe('conformance transcripts (fake machine, in-memory chardev)', () => {
  for (const c of CASES) {
    it(`${c.name} matches QEMU 7.2.22 byte for byte (masked)`, () => {
      const env = monitorEnvCreate(c.machine ?? {});
      registerLaterCommandStandIns(env.mons);
      const { peer } = c.kind === 'hmp' ? hmpOnPeer(env, 'compat_monitor0', false) : qmpOnPeer(env, 'compat_monitor1', { connect: false });
      const mask: MaskOptions = { ...c.mask };
      if (mask.helpFilter) mask.helpFilter = helpFilter(env);
      const r = replayTranscript(env, peer, loadTranscript(c.name), mask);
      expect(r.txMatches).toBe(true);
      expect(r.actual).toBe(r.expected);
    });
  }
});
