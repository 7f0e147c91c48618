// detvm next to real qemu-system-riscv32 7.2 on the same image files (skipped, with a message,
// when QEMU or qemu-img/qemu-io are not installed). Method: QEMU runs first with its HMP monitor
// on stdio (TZ=UTC, -nodefaults, -S), then detvm opens the same files with the same -drive and
// -device options; monitor outputs are compared after removing the line editor's echo and
// masking only the random digits of generated node names (#blockNNN).
//   - `info block` in its forms (-v, -n, a device or node filter) prints what QEMU prints;
//   - a snapshot that real QEMU's savevm wrote is listed by detvm's `info snapshots` exactly as
//     QEMU lists it, its disk contents read back, and its vmstate area holds QEMU's stream;
//   - loading that snapshot fails (QEMU's device state is not detvm's) and leaves the machine as
//     it was: the failed loadvm is atomic.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createMachine, type DetvmMachine } from '../../index.ts';
import {
  qcow2Close, qcow2LoadVmstate, qcow2Open, qcow2Pread, qcow2SnapshotGoto, qcow2SnapshotList,
} from '../../core/block/index.ts';
import { hostBlockFileProviderCreate } from '../../core/host/index.ts';
import { stateHash } from './snapshot-support.ts';

const env = { ...process.env, TZ: 'UTC', LC_ALL: 'C' };
const ok = (cmd: string, arg: string): boolean => spawnSync(cmd, [arg], { encoding: 'utf8' }).status === 0;
const HAVE = ok('qemu-system-riscv32', '--version') && ok('qemu-img', '--version') && ok('qemu-io', '--version');
if (!HAVE) console.warn('qemu-system-riscv32/qemu-img/qemu-io not installed: skipping (apt-get install qemu-system-misc qemu-utils)');

const dir = HAVE ? mkdtempSync(join(tmpdir(), 'detvm-qemu-system-')) : '';
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(cmd: string, args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'latin1', env, input, timeout: 60_000, maxBuffer: 64 << 20 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function must(cmd: string, args: string[]): void {
  const r = run(cmd, args);
  expect(r.status, `${cmd} ${args.join(' ')}: ${r.stderr}`).toBe(0);
}

/** -drive/-device options of the machine both run. */
interface Disks {
  drives: string[];
  devices: string[];
}

function argv(d: Disks): string[] {
  return [...d.drives.flatMap((x) => ['-drive', x]), ...d.devices.flatMap((x) => ['-device', x])];
}

/**
 * Run `commands` on real QEMU's HMP (stdio) and return each command's output, the echo removed.
 * The prompt after the last command is followed by `quit`.
 */
function qemuHmp(d: Disks, commands: string[]): string[] {
  const r = run('qemu-system-riscv32', [
    '-M', 'virt', '-bios', 'none', '-display', 'none', '-nodefaults', '-S', '-serial', 'null', '-monitor', 'stdio', ...argv(d),
  ], commands.map((c) => c + '\n').join('') + 'quit\n');
  expect(r.status, r.stderr).toBe(0);
  // Each "(qemu) " starts the echo of one command line (redrawn with escapes), ended by CRLF.
  const parts = r.stdout.replace(/\r/g, '').split('(qemu) ').slice(1, 1 + commands.length);
  return parts.map((p) => p.slice(p.indexOf('\n') + 1));
}

function detvmMachine(d: Disks): DetvmMachine {
  return createMachine({
    clock: 'virtual', startPaused: true, blockFiles: hostBlockFileProviderCreate(), drives: d.drives, devices: d.devices,
  });
}

const hmpText = (vm: DetvmMachine, line: string): string => vm.hmp(line).replace(/\r/g, '');
const maskNodeNames = (s: string): string => s.replace(/#block\d+/g, '#block<N>');

describe.skipIf(!HAVE)('detvm and real qemu-system-riscv32 7.2 on the same images', () => {
  it('info block, -v, -n and filters print what QEMU prints', () => {
    const q = join(dir, 'ib.qcow2');
    const r = join(dir, 'ib.raw');
    must('qemu-img', ['create', '-q', '-f', 'qcow2', q, '16M']);
    must('qemu-img', ['snapshot', '-c', 'snapA', q]);
    must('qemu-img', ['create', '-q', '-f', 'raw', r, '1M']);
    const d: Disks = {
      drives: [
        `if=none,file=${q},format=qcow2,id=d0,node-name=disk0`,
        `if=none,file=${r},format=raw,id=r0,read-only=on,cache=unsafe`,
        'if=none,id=empty',
      ],
      devices: ['virtio-blk-device,drive=d0'],
    };
    const commands = ['info block', 'info block -v', 'info block -n', 'info block -n -v disk0', 'info block d0', 'info block r0',
      'info block nosuch'];
    const want = qemuHmp(d, commands);
    const vm = detvmMachine(d);
    try {
      commands.forEach((c, i) => expect(maskNodeNames(hmpText(vm, c)), c).toBe(maskNodeNames(want[i]!)));
    } finally {
      vm.close();
    }
  });

  it('a snapshot real QEMU saved is listed, its disk read, and loading it fails atomically', () => {
    const img = join(dir, 'qs.qcow2');
    must('qemu-img', ['create', '-q', '-f', 'qcow2', img, '16M']);
    must('qemu-io', ['-c', 'write -P 0x5a 0 1M', '-c', 'write -P 0x33 8M 64k', img]);
    const d: Disks = {
      drives: [`if=none,file=${img},format=qcow2,id=d0,node-name=disk0`],
      devices: ['virtio-blk-device,drive=d0'],
    };
    const [saved, listed] = qemuHmp(d, ['savevm qs1', 'info snapshots']);
    expect(saved).toBe('');
    expect(listed).toMatch(/^List of snapshots present on all disks:\n/);
    must('qemu-io', ['-c', 'write -P 0xa5 0 512k', img]); // the active layer moves on

    const vm = detvmMachine(d);
    try {
      expect(hmpText(vm, 'info snapshots')).toBe(listed);
      const before = stateHash(vm);
      const status = hmpText(vm, 'info status');
      const out = hmpText(vm, 'loadvm qs1');
      // QEMU's virt board has RAM blocks detvm's lacks (the pflash banks): ram_load's texts.
      expect(out).toBe('Unknown ramblock "virt.flash0", cannot accept migration\n'
        + "error while loading state for instance 0x0 of device 'ram'\n"
        + 'Error: Error -22 while loading VM state\n');
      expect(hmpText(vm, 'info status')).toBe(status); // vm_stop does not touch a stopped VM's state
      expect(stateHash(vm)).toBe(before);
    } finally {
      vm.close();
    }

    const s = qcow2Open(hostBlockFileProviderCreate().open(img, false), { readOnly: false });
    try {
      const sn = qcow2SnapshotList(s);
      expect(sn.map((x) => [x.idStr, x.name, x.icount])).toEqual([['1', 'qs1', -1]]);
      const active = new Uint8Array(1 << 20);
      qcow2Pread(s, 0, active);
      expect([active[0], active[(512 << 10) - 1], active[512 << 10], active[(1 << 20) - 1]]).toEqual([0xa5, 0xa5, 0x5a, 0x5a]);
      qcow2SnapshotGoto(s, 'qs1');
      const disk = new Uint8Array(16 << 20);
      qcow2Pread(s, 0, disk);
      const want = new Uint8Array(16 << 20);
      want.fill(0x5a, 0, 1 << 20);
      want.fill(0x33, 8 << 20, (8 << 20) + (64 << 10));
      expect(Buffer.compare(disk, want)).toBe(0);
      // The vmstate area holds QEMU's stream: QEVM, version 3.
      const head = new Uint8Array(8);
      qcow2LoadVmstate(s, 0, head);
      expect([...head]).toEqual([0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3]);
      expect(sn[0]!.vmStateSize).toBeGreaterThan(0);
    } finally {
      qcow2Close(s);
    }
    // detvm's goto left an image QEMU still checks clean.
    const chk = run('qemu-img', ['check', img]);
    expect([chk.status, chk.stderr]).toEqual([0, '']);
  });
});
