// A small deterministic machine behind the MonitorMachine interface, for monitor tests until the
// real kernel (core/system, core/cpu) is wired in index.ts. It models QEMU 7.2's run-state rules
// that the monitor transcripts exercise (vm_stop/vm_start events, reset and shutdown requests
// handled in main_loop_should_exit), vCPUs with a register dump, guest memory and ringbufs.

import { type LoopMachine, loopMachineCreate } from '../../core/loop/index.ts';
import { notifierListNotify } from '../../core/util/index.ts';
import type { MonitorMachine, MonitorChardevInfo, MonitorCpuInfo, MonitorDirEntry, RunStateName } from '../../monitor/index.ts';

export interface FakeMachineOptions {
  cpus?: number;
  /** -S: start in prelaunch. */
  startPaused?: boolean;
  name?: string | null;
  package?: string;
  /** RAM base and size (guest-physical = guest-virtual: MMU off). */
  ramBase?: bigint;
  ramSize?: number;
  /** Labels of ringbuf chardevs and their sizes. */
  ringbufs?: Record<string, number>;
  /** Other chardevs shown by info chardev. */
  chardevs?: MonitorChardevInfo[];
  /** Directory tree for file completion: dir -> entries. */
  files?: Record<string, MonitorDirEntry[]>;
  snapshotTags?: string[];
  /** Record shutdown requests without leaving the loop (fuzzing). */
  noExit?: boolean;
}

export interface FakeMachine extends MonitorMachine {
  m: LoopMachine;
  state: {
    runstate: RunStateName;
    autostart: boolean;
    resetRequest: string | null;
    shutdownRequest: string | null;
    dumpInProgress: boolean;
    regs: { pc: number; x: number[] }[];
    ram: Uint8Array;
    ringbufs: Map<string, { size: number; data: number[] }>;
    stdout: string[];
    stderr: string[];
    events: string[];
  };
}

const ABI = ['zero', 'ra', 'sp', 'gp', 'tp', 't0', 't1', 't2', 's0', 's1', 'a0', 'a1', 'a2', 'a3', 'a4', 'a5',
  'a6', 'a7', 's2', 's3', 's4', 's5', 's6', 's7', 's8', 's9', 's10', 's11', 't3', 't4', 't5', 't6'];

const h8 = (v: number): string => (v >>> 0).toString(16).padStart(8, '0');

/** A riscv_cpu_dump_state-shaped text (7.2 layout, values from the fake CPU). */
function dumpState(regs: { pc: number; x: number[] }): string {
  const lines = [' V      =   0', ` pc       ${h8(regs.pc)}`];
  for (const csr of ['mhartid', 'mstatus', 'mstatush', 'hstatus', 'vsstatus', 'mip', 'mie', 'mideleg', 'hideleg',
    'medeleg', 'hedeleg', 'mtvec', 'stvec', 'vstvec', 'mepc', 'sepc', 'vsepc', 'mcause', 'scause', 'vscause',
    'mtval', 'stval', 'htval', 'mtval2', 'mscratch', 'sscratch', 'satp']) {
    lines.push(` ${csr.padEnd(8)} ${h8(csr === 'mip' ? 0x80 : 0)}`);
  }
  for (let i = 0; i < 32; i += 4) {
    let l = '';
    for (let j = i; j < i + 4; j++) l += ` ${`x${j}/${ABI[j]}`.padEnd(8)} ${h8(regs.x[j] ?? 0)}`;
    lines.push(l);
  }
  const fabi = (j: number): string => (j < 8 ? `ft${j}` : j < 10 ? `fs${j - 8}` : j < 18 ? `fa${j - 10}` : j < 28 ? `fs${j - 16}` : `ft${j - 20}`);
  for (let i = 0; i < 32; i += 4) {
    let l = '';
    for (let j = i; j < i + 4; j++) l += ` ${`f${j}/${fabi(j)}`.padEnd(8)} ${'0'.repeat(16)}`;
    lines.push(l);
  }
  return lines.join('\n') + '\n';
}

/** Create a loop machine plus a fake MonitorMachine driving its QAPI events and loop hooks. */
export function fakeMachineCreate(opts: FakeMachineOptions = {}, m: LoopMachine = loopMachineCreate()): FakeMachine {
  const ramBase = opts.ramBase ?? 0x80000000n;
  const state: FakeMachine['state'] = {
    runstate: opts.startPaused ? 'prelaunch' : 'running',
    autostart: !opts.startPaused,
    resetRequest: null,
    shutdownRequest: null,
    dumpInProgress: false,
    regs: Array.from({ length: opts.cpus ?? 1 }, (_, i) => ({ pc: 0x80000034 + 4 * i, x: Array.from({ length: 32 }, (_, j) => (j === 2 ? 0x80000580 : 0)) })),
    ram: new Uint8Array(opts.ramSize ?? 4096),
    ringbufs: new Map(Object.entries(opts.ringbufs ?? {}).map(([k, size]) => [k, { size, data: [] }])),
    stdout: [],
    stderr: [],
    events: [],
  };
  const emit = (event: string, data?: Record<string, unknown>): void => {
    state.events.push(event);
    notifierListNotify(m.qapiEvents, data === undefined ? { event } : { event, data });
  };
  const cpuList = (): MonitorCpuInfo[] => state.regs.map((_, i) => ({
    cpuIndex: i, qomPath: `/machine/soc0/harts[${i}]`, threadId: 4242 + i, target: 'riscv32', props: { 'core-id': i },
  }));
  const fm: FakeMachine = {
    m, state,
    version: { major: 7, minor: 2, micro: 22 },
    package: opts.package ?? 'detvm 0.1.0',
    targetLongBits: 32,
    name: () => opts.name ?? null,
    machineReady: () => true,
    runstate: () => state.runstate,
    runstateIsRunning: () => state.runstate === 'running',
    runstateNeedsReset: () => state.runstate === 'internal-error' || state.runstate === 'shutdown',
    singlestep: () => false,
    dumpInProgress: () => state.dumpInProgress,
    vmStop: (rs) => {
      if (state.runstate !== 'running') return;
      state.runstate = rs;
      emit('STOP');
    },
    vmStart: () => {
      if (state.runstate === 'running') return;
      emit('RESUME');
      state.runstate = 'running';
    },
    setAutostart: (on) => { state.autostart = on; },
    blockResetAndActivateAll: () => null,
    systemResetRequest: (cause) => { state.resetRequest = cause; },
    systemShutdownRequest: (cause) => { state.shutdownRequest = cause; },
    cpus: cpuList,
    cpuDumpState: (i) => dumpState(state.regs[i]!),
    getMonitorDef: (i, name) => {
      const r = state.regs[i];
      if (!r) return null;
      if (name === 'pc') return BigInt(r.pc >>> 0);
      const idx = /^x(\d+)$/.test(name) ? Number(name.slice(1)) : ABI.indexOf(name);
      return idx >= 0 && idx < 32 ? BigInt(r.x[idx]! >>> 0) : null;
    },
    cpuMemoryRead: (_i, addr, len) => fm.physMemoryRead(addr, len),
    physMemoryRead: (addr, len) => {
      const off = addr - ramBase;
      if (off < 0n || off + BigInt(len) > BigInt(state.ram.length)) return null;
      return state.ram.slice(Number(off), Number(off) + len);
    },
    chardevs: () => [
      ...(opts.chardevs ?? []),
      ...[...state.ringbufs.keys()].map((label) => ({ label, filename: 'ringbuf', frontendOpen: false })),
    ],
    ringbufLookup: (d) => {
      if (state.ringbufs.has(d)) return null;
      if ((opts.chardevs ?? []).some((c) => c.label === d)) return `${d} is not a ringbuf device`;
      return `Device '${d}' not found`;
    },
    ringbufWrite: (d, bytes) => {
      const rb = state.ringbufs.get(d)!;
      for (const b of bytes) {
        rb.data.push(b);
        if (rb.data.length > rb.size) rb.data.shift();
      }
      return true;
    },
    ringbufRead: (d, size) => {
      const rb = state.ringbufs.get(d)!;
      return Uint8Array.from(rb.data.splice(0, Math.min(size, rb.data.length)));
    },
    snapshotTags: () => opts.snapshotTags ?? [],
    listDirectory: (dir) => opts.files?.[dir] ?? null,
    hostStdout: (t) => { state.stdout.push(t); },
    hostStderr: (t) => { state.stderr.push(t); },
  };
  // main_loop_should_exit: shutdown and reset requests (softmmu/runstate.c).
  m.loop.hooks.shouldExit = () => {
    if (state.shutdownRequest !== null && !opts.noExit) {
      const reason = state.shutdownRequest;
      state.shutdownRequest = null;
      emit('SHUTDOWN', { guest: false, reason });
      return true;
    }
    if (state.resetRequest !== null) {
      const reason = state.resetRequest;
      state.resetRequest = null;
      state.regs.forEach((r) => { r.pc = 0x80000000; });
      emit('RESET', { guest: false, reason });
      if (!['running', 'inmigrate', 'finish-migrate'].includes(state.runstate)) state.runstate = 'prelaunch';
    }
    return false;
  };
  return fm;
}
