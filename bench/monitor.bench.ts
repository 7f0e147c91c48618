// Monitor round trips over loopback TCP (issue 5): 1,000 sequential QMP query-status and HMP
// `info status` commands (after 300 unmeasured ones) against a detvm process, next to real qemu-system-riscv32 7.2 when it
// is installed (-qmp tcp:...,nodelay=on, as the issue asks); and QMP throughput with 8 clients
// on 8 monitors. Both emulators run the demo guest as separate processes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as net from 'node:net';
import { type BenchRow, percentiles } from './harness.ts';

const N = Number(process.env.BENCH_MONITOR_N ?? 1000);
/** Unmeasured commands before each measured series. */
const WARMUP = 300;
const KERNEL = 'guests/bin/demo.elf';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function connectRetry(port: number): Promise<net.Socket> {
  for (let i = 0; i < 200; i++) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
        s.once('error', reject);
      });
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`could not connect to port ${port}`);
}

/** A line-oriented client: `until(pattern)` resolves with the text received up to the match. */
function client(s: net.Socket): { send(t: string): void; until(re: RegExp): Promise<string>; close(): void } {
  s.setNoDelay(true);
  let buf = '';
  let waiter: { re: RegExp; resolve: (t: string) => void } | null = null;
  s.on('data', (d) => {
    buf += d.toString('latin1');
    if (waiter) {
      const m = waiter.re.exec(buf);
      if (m) {
        const t = buf.slice(0, m.index + m[0].length);
        buf = buf.slice(m.index + m[0].length);
        const w = waiter;
        waiter = null;
        w.resolve(t);
      }
    }
  });
  return {
    close: () => s.destroy(),
    send: (t) => void s.write(t),
    until: (re) => new Promise((resolve) => {
      const m = re.exec(buf);
      if (m) {
        const t = buf.slice(0, m.index + m[0].length);
        buf = buf.slice(m.index + m[0].length);
        resolve(t);
      } else {
        waiter = { re, resolve };
      }
    }),
  };
}

async function measure(label: string, cmd: string[], qmpPorts: number[], hmpPort: number): Promise<BenchRow[]> {
  const proc: ChildProcess = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    const q = client(await connectRetry(qmpPorts[0]!));
    await q.until(/\r\n/);
    q.send('{"execute":"qmp_capabilities"}');
    await q.until(/\r\n/);
    // Both emulators get the same unmeasured warm-up (detvm's JIT compiles the paths a command
    // takes during its first few hundred commands; QEMU's code is compiled ahead).
    for (let i = 0; i < WARMUP; i++) {
      q.send('{"execute":"query-status"}');
      await q.until(/"return".*\r\n/);
    }
    const qmp: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = process.hrtime.bigint();
      q.send('{"execute":"query-status"}');
      await q.until(/"return".*\r\n/);
      qmp.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const h = client(await connectRetry(hmpPort));
    await h.until(/\(qemu\) /);
    for (let i = 0; i < WARMUP; i++) {
      h.send('info status\r');
      await h.until(/VM status: \w+\r\n\(qemu\) /);
    }
    const hmp: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = process.hrtime.bigint();
      h.send('info status\r');
      await h.until(/VM status: \w+\r\n\(qemu\) /);
      hmp.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    // Throughput: one client per QMP monitor, all at once (a monitor serves one client at a
    // time, so the first clients leave first).
    q.close();
    h.close();
    const clients = await Promise.all(qmpPorts.map(async (p) => {
      const c = client(await connectRetry(p));
      await c.until(/\r\n/);
      c.send('{"execute":"qmp_capabilities"}');
      await c.until(/\r\n/);
      return c;
    }));
    const per = Math.ceil(N / clients.length);
    const t0 = process.hrtime.bigint();
    await Promise.all(clients.map(async (c) => {
      for (let i = 0; i < per; i++) {
        c.send('{"execute":"query-status"}');
        await c.until(/"return".*\r\n/);
      }
    }));
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    const pq = percentiles(qmp);
    const ph = percentiles(hmp);
    return [
      { name: `${label}: QMP query-status round trip, median`, value: pq.median, unit: 'ms' },
      { name: `${label}: QMP query-status round trip, p99`, value: pq.p99, unit: 'ms' },
      { name: `${label}: HMP info status round trip, median`, value: ph.median, unit: 'ms' },
      { name: `${label}: HMP info status round trip, p99`, value: ph.p99, unit: 'ms' },
      { name: `${label}: QMP throughput, ${clients.length} clients on ${clients.length} monitors`, value: (per * clients.length) / secs, unit: 'cmd/s' },
    ];
  } finally {
    proc.kill('SIGKILL');
  }
}

async function args(nodelay: boolean): Promise<{ argv: string[]; qmpPorts: number[]; hmpPort: number }> {
  const hmpPort = await freePort();
  const qmpPorts: number[] = [];
  for (let i = 0; i < 8; i++) qmpPorts.push(await freePort());
  const nd = nodelay ? ',nodelay=on' : '';
  const argv = ['-M', 'virt', '-bios', 'none', '-display', 'none', '-serial', 'null', '-kernel', KERNEL,
    '-monitor', `tcp:127.0.0.1:${hmpPort},server=on,wait=off${nd}`,
    ...qmpPorts.flatMap((p) => ['-qmp', `tcp:127.0.0.1:${p},server=on,wait=off${nd}`])];
  return { argv, qmpPorts, hmpPort };
}

export async function run(): Promise<BenchRow[]> {
  const d = await args(false);
  const rows = await measure('detvm', ['node', 'bin/detvm.js', ...d.argv], d.qmpPorts, d.hmpPort);
  const haveQemu = spawnSync('qemu-system-riscv32', ['-version']).status === 0;
  if (!haveQemu) {
    rows.push({ name: 'QEMU 7.2', value: NaN, unit: '', note: 'qemu-system-riscv32 not installed (apt-get install qemu-system-misc)' });
    return rows;
  }
  const q = await args(true);
  const qrows = await measure('QEMU 7.2', ['qemu-system-riscv32', ...q.argv], q.qmpPorts, q.hmpPort);
  const dm = rows[0]!.value;
  const qm = qrows[0]!.value;
  rows.push(...qrows);
  rows.push({ name: 'QMP median: detvm / QEMU', value: dm / qm, unit: 'x', target: '<= 1', pass: dm <= qm });
  const dh = rows[2]!.value;
  const qh = qrows[2]!.value;
  rows.push({ name: 'HMP median: detvm / QEMU', value: dh / qh, unit: 'x', target: '<= 1', pass: dh <= qh });
  return rows;
}
