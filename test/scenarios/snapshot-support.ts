// Helpers for the snapshot scenarios: machines with in-memory qcow2 drives and virtio-blk disks,
// a state hash over everything a snapshot holds (the VM state stream and the disks' contents),
// the guest-visible part of a trace window, and a raw QMP connection that logs the wire in order.
import { createHash } from 'node:crypto';
import { createMachine, type DetvmMachine, type MachineConfig } from '../../index.ts';
import {
  type MemBlockFileProvider, blkGetLength, blkPread, blockState, memBlockFileProviderCreate, qcow2Create,
} from '../../core/block/index.ts';
import { globalStateStore, qemuFileGetBuffer, qemuFileWriterCreate, qemuSavevmState } from '../../core/migration/index.ts';
import { runUntil } from '../../core/loop/index.ts';
import { CHR_EVENT_OPENED, qemuChrBeEvent } from '../../core/char/index.ts';
import { libraryChardevCreate, libraryChardevSend } from '../../chardev/index.ts';
import { monitorInitQmp } from '../../monitor/index.ts';
import type { TraceRecord } from '../../core/trace/index.ts';

export const GUEST_DISK = 'guests/bin/disk.elf';
export const GUEST_DEMO = 'guests/bin/demo.elf';

/** In-memory images d0.qcow2, d1.qcow2... of `size` bytes. */
export function memImages(n: number, size = 4 << 20): MemBlockFileProvider {
  const p = memBlockFileProviderCreate();
  for (let i = 0; i < n; i++) {
    const f = p.create(`d${i}.qcow2`);
    qcow2Create(f, { size });
    f.close();
  }
  return p;
}

/** A machine with one virtio-blk disk per image of `files` (d0, d1...), running `kernel`. */
export function diskMachine(files: MemBlockFileProvider, disks: number, kernel = GUEST_DISK, extra: MachineConfig = {}): DetvmMachine {
  const drives: string[] = [];
  const devices: string[] = [];
  for (let i = 0; i < disks; i++) {
    drives.push(`if=none,file=d${i}.qcow2,format=qcow2,id=d${i},node-name=disk${i}`);
    devices.push(`virtio-blk-device,drive=d${i},serial=detvm-d${i}`);
  }
  return createMachine({ kernel, blockFiles: files, drives, devices, rtcBaseSec: 1_767_225_600, ...extra });
}

/**
 * A hash of what a snapshot captures: the VM state stream (devices, CPU, RAM, clocks) and the
 * guest-visible contents of every drive. The run state is left out (globalstate is saved as
 * "paused" whatever the state), so a machine that loaded a snapshot hashes as the one that saved it.
 */
export function stateHash(vm: DetvmMachine): string {
  const m = vm.kernel;
  const h = createHash('sha256');
  const gs = m.migration.gs;
  const saved = gs.runstate.slice();
  globalStateStore(gs, 'paused');
  const f = qemuFileWriterCreate();
  const failure = qemuSavevmState(m.migration.sv, f);
  gs.runstate.set(saved);
  if (failure) throw new Error(failure.messages.join('\n'));
  h.update(qemuFileGetBuffer(f));
  for (const blk of blockState(m).backends) {
    const buf = new Uint8Array(Math.max(0, blkGetLength(blk)));
    if (blkPread(blk, 0, buf) !== 0) throw new Error(`cannot read drive ${blk.name}`);
    h.update(blk.name).update(buf);
  }
  return h.digest('hex').slice(0, 16);
}

/** The guest-visible part of trace records: what the vCPU and the devices did, at which icount. */
export function guestTrace(records: readonly TraceRecord[]): string {
  const keep = /^(virtio_|blk_aio_|tcg_cpus_exec|serial_)/;
  const lines = records.filter((r) => keep.test(r.name)).map((r) => {
    const { id: _id, ...args } = (r.args ?? {}) as Record<string, unknown>;
    return JSON.stringify([r.icount, r.kind, r.name, args]);
  });
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16) + ` (${lines.length} records)`;
}

/** A QMP connection that logs every message it receives, in wire order. */
export interface QmpWire {
  log: string[];
  send(cmd: Record<string, unknown>): void;
  /** Run until a reply (return or error) arrives for the last command sent. */
  waitReply(): void;
}

export function qmpWire(vm: DetvmMachine): QmpWire {
  const m = vm.kernel;
  const log: string[] = [];
  let buf = '';
  let replies = 0;
  const chr = libraryChardevCreate(m, 'test_qmp', (text) => {
    buf += text;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      const obj = JSON.parse(line) as Record<string, unknown>;
      if ('return' in obj || 'error' in obj) replies++;
      if ('QMP' in obj) continue;
      delete obj['timestamp'];
      log.push(JSON.stringify(obj));
    }
  }, false);
  const r = monitorInitQmp(vm.monitors, chr, {});
  if ('error' in r) throw new Error(r.error);
  qemuChrBeEvent(chr, CHR_EVENT_OPENED);
  let want = 0;
  const send = (cmd: Record<string, unknown>): void => {
    want++;
    libraryChardevSend(chr, Buffer.from(JSON.stringify(cmd) + '\n', 'utf8'));
  };
  const wire: QmpWire = {
    log,
    send,
    waitReply: () => runUntil(m, () => replies >= want, { maxIterations: 1_000_000 }),
  };
  send({ execute: 'qmp_capabilities' });
  wire.waitReply();
  log.length = 0;
  return wire;
}
