// savevm and loadvm of 64 MiB of random-filled guest RAM on a qcow2 image in a temporary
// directory, through the HMP commands (vm.hmp), median of 5; next to real QEMU 7.2 when
// qemu-system-riscv32 is installed: the same machine (-M virt -m 64M -S, RAM filled from the same
// bytes with -device loader, the same qcow2 disk on virtio-blk-device), timed from sending the
// command on an HMP unix socket to the next prompt. Target: at or below QEMU (about 86 ms for
// savevm and 91 ms for loadvm when the issue was filed).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMachine } from '../index.ts';
import { qcow2Create } from '../core/block/index.ts';
import { hostBlockFileProviderCreate } from '../core/host/index.ts';
import { addressSpaceWrite, RAM_BASE } from '../core/memory/index.ts';
import { prngCreate, prngNextU32 } from '../core/util/index.ts';
import { type BenchRow, percentiles, timeMs } from './harness.ts';

const RAM = 64 << 20;
const ROUNDS = 5;

function randomRam(): Uint8Array {
  const rng = prngCreate(64);
  const out = new Uint8Array(RAM);
  const words = new Uint32Array(out.buffer);
  for (let i = 0; i < words.length; i++) words[i] = prngNextU32(rng);
  return out;
}

function newImage(path: string): void {
  const f = hostBlockFileProviderCreate().create(path);
  qcow2Create(f, { size: 16 << 20 });
  f.close();
}

async function detvm(dir: string, ram: Uint8Array): Promise<{ save: number[]; load: number[] }> {
  const image = join(dir, 'detvm.qcow2');
  newImage(image);
  const vm = createMachine({
    memory: RAM, startPaused: true, blockFiles: hostBlockFileProviderCreate(),
    drives: [`if=none,file=${image},format=qcow2,id=d0,node-name=disk0`], devices: ['virtio-blk-device,drive=d0'],
  });
  addressSpaceWrite(vm.kernel.as, RAM_BASE, ram);
  const save: number[] = [];
  const load: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    save.push(await timeMs(() => expectEmpty(vm.hmp(`savevm b${i}`))));
    load.push(await timeMs(() => expectEmpty(vm.hmp(`loadvm b${i}`))));
  }
  vm.close();
  return { save, load };
}

function expectEmpty(out: string): void {
  if (out !== '') throw new Error(`unexpected monitor output: ${out}`);
}

function haveQemu(): boolean {
  try {
    execFileSync('qemu-system-riscv32', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** An HMP session on a unix socket: send a line, resolve at the next prompt. */
function hmpSession(path: string): Promise<{ run: (line: string) => Promise<string>; close: () => void }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path);
    let buf = '';
    let waiter: ((text: string) => void) | null = null;
    const poll = (): void => {
      const at = buf.indexOf('(qemu) ');
      if (at >= 0 && waiter) {
        const text = buf.slice(0, at);
        buf = buf.slice(at + 7);
        const w = waiter;
        waiter = null;
        w(text);
      }
    };
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      poll();
    });
    sock.on('error', reject);
    sock.on('close', () => waiter?.(buf));
    const next = (): Promise<string> => new Promise((r) => {
      waiter = r;
      poll();
    });
    void next().then(() => resolve({
      run: (line) => {
        const p = next();
        sock.write(line + '\n');
        return p;
      },
      close: () => sock.destroy(),
    }));
  });
}

async function qemu(dir: string, ram: Uint8Array): Promise<{ save: number[]; load: number[] }> {
  const image = join(dir, 'qemu.qcow2');
  newImage(image);
  const blob = join(dir, 'ram.bin');
  writeFileSync(blob, ram);
  const mon = join(dir, 'hmp.sock');
  const child: ChildProcess = spawn('qemu-system-riscv32', [
    '-M', 'virt', '-bios', 'none', '-m', '64M', '-S', '-display', 'none', '-serial', 'none',
    '-monitor', `unix:${mon},server=on,wait=off`,
    '-drive', `if=none,file=${image},format=qcow2,id=d0,node-name=disk0`, '-device', 'virtio-blk-device,drive=d0',
    '-device', `loader,file=${blob},addr=0x80000000,force-raw=on`,
  ], { stdio: 'ignore' });
  try {
    let session: Awaited<ReturnType<typeof hmpSession>> | null = null;
    for (let i = 0; i < 100 && session === null; i++) {
      await new Promise((r) => setTimeout(r, 50));
      session = await hmpSession(mon).catch(() => null);
    }
    if (!session) throw new Error('qemu-system-riscv32 did not open its monitor');
    const save: number[] = [];
    const load: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      save.push(await timeMs(() => session.run(`savevm b${i}`)));
      load.push(await timeMs(() => session.run(`loadvm b${i}`)));
    }
    await session.run('quit').catch(() => '');
    session.close();
    return { save, load };
  } finally {
    child.kill();
  }
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'detvm-snapshot-bench-'));
  try {
    const ram = randomRam();
    const d = await detvm(dir, ram);
    const q = haveQemu() ? await qemu(dir, ram) : null;
    const rows: BenchRow[] = [];
    for (const kind of ['save', 'load'] as const) {
      const ours = percentiles(d[kind]).median;
      const theirs = q ? percentiles(q[kind]).median : null;
      const name = kind === 'save' ? 'savevm 64 MiB random RAM (qcow2)' : 'loadvm 64 MiB random RAM (qcow2)';
      rows.push({
        name, value: ours, unit: 'ms',
        target: theirs === null ? 'at or below QEMU 7.2 (not installed here)' : `<= QEMU 7.2 (${theirs.toFixed(0)} ms here)`,
        ...(theirs === null ? {} : { pass: ours <= theirs }),
        note: `median of ${ROUNDS}`,
      });
      if (theirs !== null) rows.push({ name: `${name}, QEMU 7.2`, value: theirs, unit: 'ms', note: `median of ${ROUNDS}` });
    }
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
