// Conformance with real QEMU 7.2 over real TCP: every transcript in test/fixtures/qemu-7.2/conformance is
// replayed against a live detvm machine started with the transcript's own QEMU command line
// (ports made ephemeral, the guest replaced by detvm's demo guest, the serial file dropped, a
// -drive's run/X.qcow2 replaced by a new empty qcow2 image in a temporary directory). The client sends NAME.tx.bin in the recorded chunks; after each chunk it waits until
// detvm has consumed the bytes, gone idle and every byte it wrote has arrived; the received
// stream must equal NAME.rx.bin once the README's volatile parts are masked. A transcript with
// an HMP side (NAME.hmp.*: qmp-events-from-hmp) is replayed on both connections: QMP's chunks
// first, then HMP's, and both received streams must match. Its `migrate "exec:cat > /dev/null"`
// runs through an exec provider that accepts and discards what it is sent (the test's stand-in
// for the shell command: detvm's CLI does not run commands).
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
import { vfdOpen } from '../../core/loop/index.ts';
import { CONFORMANCE_DIR, loadTranscript, maskVolatile, type MaskOptions, type Transcript } from '../support/transcript.ts';
import type { MonitorSet } from '../../monitor/index.ts';

function hmpCommandNames(mons: MonitorSet): NonNullable<MaskOptions['helpFilter']> {
  const names = (t: { name: string }[]): string[] => t.map((c) => c.name);
  return { main: names(mons.hmpCmds), info: names(mons.hmpInfoCmds) };
}

/** Transcripts whose commands are typed on the HMP connection (NAME.hmp.*) while QMP watches. */
const WITH_HMP_SIDE = new Set<string>(['qmp-events-from-hmp']);
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
  const until = (what: string, pred: () => boolean): Promise<void> => new Promise((resolve, reject) => {
    if (pred()) return resolve();
    const guard = setTimeout(() => reject(new Error(`${name}: ${what} did not happen`)), 20_000);
    waiters.push({ pred, resolve: () => { clearTimeout(guard); resolve(); } });
    live.io().wake();
  });
  const idle = (): boolean => vm.kernel.loop.lastTimeoutNs !== 0;
  /** One client connection to a monitor's listening chardev. */
  interface Client {
    target: Counted;
    sock: net.Socket | null;
    received: number[];
    all: number[];
    closed: boolean;
    sent: number;
    base: number;
  }
  const clients: Client[] = [];
  const client = (c: Counted): Client => {
    const k: Client = { target: c, sock: null, received: [], all: [], closed: false, sent: 0, base: 0 };
    clients.push(k);
    return k;
  };
  const connect = async (k: Client): Promise<void> => {
    k.closed = false;
    k.received = [];
    const s = net.connect({ host: '127.0.0.1', port: k.target.port });
    s.setNoDelay(true);
    s.on('data', (d: Buffer) => {
      k.received.push(...d);
      k.all.push(...d);
      live.io().wake();
    });
    s.on('close', () => {
      k.closed = true;
      live.io().wake();
    });
    s.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      s.once('connect', () => resolve());
      s.once('error', reject);
    });
    k.sock = s;
  };
  /** Every byte detvm wrote to a connected client has arrived there. */
  const delivered = (): boolean => clients.every((k) => k.closed || k.sock === null || k.received.length + k.base >= k.target.written);
  const settled = (k: Client) => (): boolean => k.closed || vm.exitStatus() !== null
    || (k.target.consumed >= k.sent && idle() && delivered());
  cleanup = async () => {
    for (const k of clients) k.sock?.destroy();
    run.stop();
    await run.done;
    vm.close();
    live.io().close();
    rmSync(dir, { recursive: true, force: true });
  };
  /** Send a transcript's chunks on `k`, reconnecting where it notes a new connection. */
  const send = async (k: Client, tr: Transcript): Promise<void> => {
    for (const e of tr.events) {
      if (vm.exitStatus() !== null || k.closed) break;
      if (e.dir === '>>') {
        k.sent += e.data.length;
        k.sock!.write(e.data);
        await until(`the answer to chunk ${JSON.stringify(Buffer.from(e.data).toString('latin1'))}`, settled(k));
      } else if (e.dir === '##' && /^(second|new) connection/.test(Buffer.from(e.data).toString('latin1'))) {
        k.sock?.destroy();
        await until('the disconnect', () => idle() && k.target.chr.filename.startsWith('disconnected'));
        k.base = k.target.written;
        k.sent = k.target.consumed;
        await connect(k);
        // The new connection's greeting is written (not only the old one's bytes delivered).
        await until('the new greeting', () => idle() && k.target.written > k.base && k.all.length >= k.target.written);
      }
    }
  };
  const main = client(target);
  await connect(main);
  await until('the greeting', () => idle() && main.target.written > 0 && main.all.length >= main.target.written);
  await send(main, t);
  let side: { k: Client; t: Transcript } | null = null;
  if (WITH_HMP_SIDE.has(name)) {
    // `migrate "exec:cat > /dev/null"`: a command that reads everything and writes nothing.
    vm.kernel.migration.exec = { open: (m, _cmd, dir) => dir === 'out'
      ? { ok: true, fd: vfdOpen(m.fdt, 'exec:cat', 'stream') }
      : { ok: false, error: 'exec: incoming migration is not supported here' } };
    side = { k: client(hmp), t: loadTranscript(`${name}.hmp`) };
    await connect(side.k);
    await until('the HMP banner', () => idle() && hmp.written > 0 && side!.k.all.length >= hmp.written);
    await send(side.k, side.t);
  }
  if (vm.exitStatus() !== null) {
    await run.done;
    vm.close(); // qemu_cleanup: QEMU closes its sockets when it exits
    await new Promise<void>((resolve) => (main.closed ? resolve() : main.sock!.once('close', () => resolve())));
  }
  const mask: MaskOptions = {
    registers: name === 'hmp-info-registers',
    helpFilter: name === 'hmp-unknown' || name === 'hmp-help-stop' ? hmpCommandNames(vm.monitors) : undefined,
  };
  const masked = (b: Uint8Array | number[]): string => maskSnapshotRows(maskVolatile(Buffer.from(b).toString('latin1'), mask));
  const sideNote = (tr: Transcript): string => `\n---- ${tr.name} ----\n`;
  return {
    expected: masked(t.rx) + (side ? sideNote(side.t) + masked(side.t.rx) : ''),
    actual: masked(main.all) + (side ? sideNote(side.t) + masked(side.k.all) : ''),
  };
}

describe('conformance with QEMU 7.2 over real TCP', () => {
  for (const name of ALL) {
    it(name, async () => {
      const r = await replay(name);
      expect(r.actual).toBe(r.expected);
    }, 60_000);
  }
});
