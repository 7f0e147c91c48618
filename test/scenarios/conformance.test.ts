// Conformance with real QEMU 7.2 over real TCP: every transcript in ../shared/conformance is
// replayed against a live detvm machine started with the transcript's own QEMU command line
// (ports made ephemeral, the guest replaced by detvm's demo guest, the serial file dropped, a
// -drive's run/X.qcow2 replaced by a new empty qcow2 image in a temporary directory). The client sends NAME.tx.bin in the recorded chunks; after each chunk it waits until
// detvm has consumed the bytes, gone idle and every byte it wrote has arrived; the received
// stream must equal NAME.rx.bin once the README's volatile parts are masked.
import { afterEach, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qcow2Create } from '../../core/block/index.ts';
import { hostBlockFileProviderCreate } from '../../core/host/index.ts';
import { createMachine, type DetvmMachine } from '../../index.ts';
import { parseCommandLine } from '../../bin/cli.ts';
import { liveHost, liveStartup, runLive } from '../../bin/live.ts';
import { charState, type Chardev } from '../../core/char/index.ts';
import { CONFORMANCE_DIR, loadTranscript, maskVolatile, type MaskOptions } from '../support/transcript.ts';
import type { MonitorSet } from '../../monitor/index.ts';

function hmpCommandNames(mons: MonitorSet): NonNullable<MaskOptions['helpFilter']> {
  const names = (t: { name: string }[]): string[] => t.map((c) => c.name);
  return { main: names(mons.hmpCmds), info: names(mons.hmpInfoCmds) };
}

/**
 * Transcripts this harness cannot replay yet: qmp-events-from-hmp types its commands on the HMP
 * connection (qmp-events-from-hmp.hmp.*) while watching QMP, and ends with a migration to an
 * exec: URI, which needs a host that runs commands.
 */
const NEEDS_DISK = new Set<string>(['qmp-events-from-hmp']);
const ALL = ['hmp-banner', 'hmp-info-status', 'hmp-unknown', 'hmp-lineedit', 'hmp-line-endings', 'hmp-help-stop',
  'hmp-info-cpus', 'hmp-info-cpus-smp2', 'hmp-info-registers', 'hmp-snapshots', 'hmp-snapshots-nodisk',
  'hmp-system-reset', 'hmp-quit', 'qmp-greeting', 'qmp-negotiation', 'qmp-status', 'qmp-errors', 'qmp-hmp',
  'qmp-events-from-hmp', 'qmp-quit'];

/** The transcript's QEMU command line; a -drive's run/X.qcow2 becomes a new empty image in `dir`. */
function commandLine(name: string, dir: string): string[] {
  const line = readFileSync(`${CONFORMANCE_DIR}${name}.txt`, 'latin1').split('\n').find((l) => l.startsWith('# qemu: '))!;
  const words = line.slice('# qemu: '.length).split(' ').slice(1);
  return words.map((w, i) => {
    if (words[i - 1] === '-kernel') return 'guests/bin/demo.elf';
    if (words[i - 1] === '-serial') return 'null';
    if (words[i - 1] === '-drive') return w.replace(/file=run\/([^,]+)/, (_m, f: string) => `file=${newImage(join(dir, f))}`);
    return w.replace(/127\.0\.0\.1:\d+/, '127.0.0.1:0');
  });
}

/** An empty 16 MiB qcow2 image at `path` (as `qemu-img create -f qcow2` makes it). */
function newImage(path: string): string {
  const f = hostBlockFileProviderCreate().create(path);
  qcow2Create(f, { size: 16 << 20 });
  f.close();
  return path;
}

/**
 * The README's snapshot volatiles: a listing row's VM SIZE (device dependent), DATE and VM CLOCK
 * become one placeholder, with the padding before them (its width follows the size's length).
 */
function maskSnapshotRows(text: string): string {
  return text.replace(/(?<=\S) +\d+(?:\.\d+)? [KMGTPE]?i?B +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\d+:\d\d:\d\d\.\d{3}/g,
    ' <SIZE DATE CLOCK>');
}

interface Counted {
  chr: Chardev;
  port: number;
  consumed: number;
  written: number;
}

/** Count what a listening chardev consumes and writes, and find its bound port. */
function counted(chr: Chardev): Counted {
  const port = Number(/:(\d+),server=on$/.exec(chr.filename)?.[1]);
  const c: Counted = { chr, port, consumed: 0, written: 0 };
  chr.inputHooks.push((_chr, buf) => {
    c.consumed += buf.length;
  });
  const write = chr.driver.write;
  chr.driver = { ...chr.driver, write: (ch, buf) => {
    const n = write(ch, buf);
    if (n > 0) c.written += n;
    return n;
  } };
  return c;
}

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

async function replay(name: string): Promise<{ expected: string; actual: string }> {
  const t = loadTranscript(name);
  const dir = mkdtempSync(join(tmpdir(), 'detvm-conformance-'));
  const action = parseCommandLine(commandLine(name, dir));
  if (action.kind !== 'run') throw new Error(`bad command line for ${name}`);
  const live = liveHost();
  const vm: DetvmMachine = createMachine({ ...action.config, host: live.host });
  const startupError = await liveStartup(vm.kernel, live.io());
  if (startupError) throw new Error(startupError);
  const chardevs = charState(vm.kernel).chardevs;
  const hmp = counted(chardevs.get('compat_monitor0')!);
  const qmp = counted(chardevs.get('compat_monitor1')!);
  const target = name.startsWith('qmp') ? qmp : hmp;
  const waiters: Array<{ pred: () => boolean; resolve: () => void }> = [];
  const check = (): void => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.pred()) waiters.splice(i, 1)[0]!.resolve();
    }
  };
  const run = runLive(vm.kernel, live.io(), check);
  let received: number[] = [];
  let all: number[] = [];
  let closed = false;
  let sock: net.Socket | null = null;
  const connect = async (): Promise<void> => {
    closed = false;
    received = [];
    const s = net.connect({ host: '127.0.0.1', port: target.port });
    s.setNoDelay(true);
    s.on('data', (d: Buffer) => {
      received.push(...d);
      all.push(...d);
      live.io().wake();
    });
    s.on('close', () => {
      closed = true;
      live.io().wake();
    });
    s.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('error', reject);
    });
    sock = s;
  };
  const until = (what: string, pred: () => boolean): Promise<void> => new Promise((resolve, reject) => {
    if (pred()) return resolve();
    const guard = setTimeout(() => reject(new Error(`${name}: ${what} did not happen`)), 20_000);
    waiters.push({ pred, resolve: () => { clearTimeout(guard); resolve(); } });
    live.io().wake();
  });
  const idle = (): boolean => vm.kernel.loop.lastTimeoutNs !== 0;
  const settled = (): boolean => closed || vm.exitStatus() !== null || (target.consumed >= sent && idle() && received.length + base >= target.written);
  let sent = 0;
  let base = 0;
  cleanup = async () => {
    sock?.destroy();
    run.stop();
    await run.done;
    vm.close();
    live.io().close();
    rmSync(dir, { recursive: true, force: true });
  };
  await connect();
  await until('the greeting', () => idle() && target.written > 0 && all.length >= target.written);
  for (const e of t.events) {
    if (vm.exitStatus() !== null || closed) break;
    if (e.dir === '>>') {
      sent += e.data.length;
      sock!.write(e.data);
      await until(`the answer to chunk ${JSON.stringify(Buffer.from(e.data).toString('latin1'))}`, settled);
    } else if (e.dir === '##' && /^(second|new) connection/.test(Buffer.from(e.data).toString('latin1'))) {
      (sock as net.Socket | null)?.destroy();
      await until('the disconnect', () => idle() && target.chr.filename.startsWith('disconnected'));
      base = target.written;
      sent = target.consumed;
      await connect();
      await until('the new greeting', () => idle() && all.length >= target.written);
    }
  }
  if (vm.exitStatus() !== null) {
    await run.done;
    vm.close(); // qemu_cleanup: QEMU closes its sockets when it exits
    await new Promise<void>((resolve) => (closed ? resolve() : sock!.once('close', () => resolve())));
  }
  const mask: MaskOptions = {
    registers: name === 'hmp-info-registers',
    helpFilter: name === 'hmp-unknown' || name === 'hmp-help-stop' ? hmpCommandNames(vm.monitors) : undefined,
  };
  return {
    expected: maskSnapshotRows(maskVolatile(Buffer.from(t.rx).toString('latin1'), mask)),
    actual: maskSnapshotRows(maskVolatile(Buffer.from(all).toString('latin1'), mask)),
  };
}

describe('conformance with QEMU 7.2 over real TCP', () => {
  for (const name of ALL) {
    it.skipIf(NEEDS_DISK.has(name))(name, async () => {
      const r = await replay(name);
      expect(r.actual).toBe(r.expected);
    }, 60_000);
  }
});
