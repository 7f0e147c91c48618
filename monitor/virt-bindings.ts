// MonitorMachine over the real kernel (core/machine.ts's VirtMachine): run states, vm_start /
// vm_stop, reset and shutdown requests, the vCPUs with their register dumps and memory, and the
// chardev registry. State changes go through core/system, which raises the QAPI events.

import type { VirtMachine } from '../core/machine.ts';
import {
  type RunState, runstateIsRunning, runstateNeedsReset, vmStart, vmStop, qemuSystemResetRequest,
  qemuSystemShutdownRequest, type ShutdownCause, SHUTDOWN_CAUSES,
} from '../core/system/index.ts';
import { cpuDumpState } from '../core/cpu/index.ts';
import { addressSpaceRead, MEMTX_OK } from '../core/memory/index.ts';
import type { MonitorDirEntry, MonitorMachine } from './machine.ts';
import { chardevMonitorBindings } from './chardev-bindings.ts';

const ABI = ['zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5',
  'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6'];

/** What the host side (bin/ or the library) provides: output streams and directory listings. */
export interface MonitorHostHooks {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  listDirectory?: (dir: string) => MonitorDirEntry[] | null;
  /** Snapshot tags for completion (the snapshot layer plugs in here). */
  snapshotTags?: () => string[];
}

function cause(c: string): ShutdownCause {
  if (!(SHUTDOWN_CAUSES as readonly string[]).includes(c)) throw new Error(`unknown shutdown cause '${c}'`);
  return c as ShutdownCause;
}

/** Read guest-physical memory for x/xp; null when any byte is not RAM, ROM or a device. */
function readPhys(m: VirtMachine, addr: bigint, len: number): Uint8Array | null {
  if (addr < 0n || addr + BigInt(len) > 0x1_0000_0000n) return null;
  const out = new Uint8Array(len);
  return addressSpaceRead(m.as, Number(addr), out) === MEMTX_OK ? out : null;
}

/** Build the MonitorMachine of `m`; `pkg` is "detvm <version>". */
export function virtMonitorMachine(m: VirtMachine, pkg: string, host: MonitorHostHooks = {}): MonitorMachine {
  return {
    version: { major: 7, minor: 2, micro: 22 },
    package: pkg,
    targetLongBits: 32,
    name: () => m.name,
    machineReady: () => true,
    runstate: () => m.runstate.current,
    runstateIsRunning: () => runstateIsRunning(m),
    runstateNeedsReset: () => runstateNeedsReset(m),
    singlestep: () => false,
    dumpInProgress: () => false,
    vmStop: (state) => void vmStop(m, state as RunState),
    vmStart: () => vmStart(m),
    setAutostart: (on) => {
      m.sys.autostart = on;
    },
    blockResetAndActivateAll: () => m.sys.block.activateAll(),
    systemResetRequest: (c) => qemuSystemResetRequest(m, cause(c)),
    systemShutdownRequest: (c) => {
      m.sys.shutdownAction = 'poweroff';
      qemuSystemShutdownRequest(m, cause(c));
    },
    cpus: () => m.sys.vcpus.map((v) => ({
      cpuIndex: v.cpu.cpuIndex, qomPath: `/machine/soc0/harts[${v.cpu.cpuIndex}]`, threadId: v.threadId,
      target: 'riscv32', props: { 'core-id': v.cpu.cpuIndex },
    })),
    cpuDumpState: (i) => cpuDumpState(m.cpus[i]!),
    getMonitorDef: (i, name) => {
      const cpu = m.cpus[i];
      if (!cpu) return null;
      if (name === 'pc') return BigInt(cpu.pc >>> 0);
      const idx = /^x\d+$/.test(name) ? Number(name.slice(1)) : ABI.indexOf(name);
      return idx >= 0 && idx < 32 ? BigInt(cpu.x[idx]! >>> 0) : null;
    },
    // Machine mode has no MMU: guest-virtual addresses are physical.
    cpuMemoryRead: (_i, addr, len) => readPhys(m, addr, len),
    physMemoryRead: (addr, len) => readPhys(m, addr, len),
    ...chardevMonitorBindings(m),
    snapshotTags: () => host.snapshotTags?.() ?? [],
    listDirectory: (dir) => host.listDirectory?.(dir) ?? null,
    hostStdout: (text) => host.stdout?.(text),
    hostStderr: (text) => host.stderr?.(text),
  };
}
