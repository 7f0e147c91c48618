// The "serial" section of the virt board's ns16550a (hw/char/serial.c vmstate_serial_mm and
// vmstate_serial, QEMU 7.2): a struct field "serial" holding the UART registers (version 3), and
// the subsections for a pending THR interrupt, a retried transmit, the two FIFOs (as QEMU's
// Fifo8: a 16-byte ring, head and count), the receive-timeout timer and its pending flag. The
// modem-status poll subsection is described but never needed (detvm's UART does not poll).
// Load checks are QEMU's serial_post_load ones; the entry's commit applies the registers and
// runs serialPostLoad (re-arming the timer and restoring FCR's derived state).
// Invariant: after a load, FIFO contents are oldest first, as SerialState keeps them.

import { type SerialDevice, UART_FIFO_LENGTH, UART_LSR_TEMT, serialPostLoad } from '../../hw/index.ts';
import { timerExpireTimeNs } from '../../loop/index.ts';
import { EINVAL } from '../errors.ts';
import { type SaveStateEntry, type SaveVMState, vmstateRegister } from '../savevm.ts';
import {
  type VMStateDescription, type VMStateStaged, vmstateInt32, vmstateStruct, vmstateTimer,
  vmstateUint16, vmstateUint32, vmstateUint8, vmstateVbuffer,
} from '../vmstate-types.ts';

const UART_IER_THRI = 0x02;
const UART_IIR_ID = 0x06;
const UART_IIR_THRI = 0x02;
const MAX_XMIT_RETRY = 4;

/** @qemu Fifo8 */
interface Fifo8Vm {
  data: Uint8Array;
  capacity: number;
  head: number;
  num: number;
}

/** The migrated part of SerialState, with QEMU's field representations. */
interface SerialVm {
  divider: number;
  rbr: number;
  ier: number;
  iir: number;
  lcr: number;
  mcr: number;
  lsr: number;
  msr: number;
  scr: number;
  fcrVmstate: number;
  thrIpending: number;
  tsrRetry: number;
  thr: number;
  tsr: number;
  recvFifo: Fifo8Vm;
  xmitFifo: Fifo8Vm;
  fifoTimeoutTimer: number;
  timeoutIpending: number;
  pollMsl: number;
  modemStatusPoll: number;
}

function fifoVm(): Fifo8Vm {
  return { data: new Uint8Array(UART_FIFO_LENGTH), capacity: UART_FIFO_LENGTH, head: 0, num: 0 };
}

/** @qemu migration/vmstate-types? util/fifo8.c vmstate_fifo8 */
const vmstateFifo8: VMStateDescription<Fifo8Vm> = {
  name: 'Fifo8',
  versionId: 1,
  minimumVersionId: 1,
  fields: [
    vmstateVbuffer('data', 'data', 'capacity', UART_FIFO_LENGTH),
    vmstateUint32('head', 'head'),
    vmstateUint32('num', 'num'),
  ],
};

function sub(
  name: string, needed: (s: SerialVm) => boolean, fields: VMStateDescription['fields'],
): VMStateDescription<SerialVm> {
  return { name, versionId: 1, minimumVersionId: 1, needed, fields };
}

/** @qemu serial_thr_ipending_needed */
function thrIpendingNeeded(s: SerialVm): boolean {
  if (!(s.ier & UART_IER_THRI)) return false;
  const expected = (s.iir & UART_IIR_ID) === UART_IIR_THRI ? 1 : 0;
  return s.thrIpending !== expected;
}

/** @qemu serial_post_load (its checks; the effects are serialPostLoad's) */
function serialVmPostLoad(
  staged: VMStateStaged, versionId: number, _live: SerialVm, report: (m: string) => void,
): number {
  if (versionId < 3) staged.fcrVmstate = 0;
  const lsr = staged.lsr as number;
  const retry = (staged.tsrRetry as number | undefined) ?? 0;
  if (retry > 0 && (lsr & UART_LSR_TEMT)) {
    report(`inconsistent state in serial device (tsr empty, tsr_retry=${retry}`);
    return -1;
  }
  if (retry <= 0 && !(lsr & UART_LSR_TEMT)) {
    report(`inconsistent state in serial device (tsr not empty, tsr_retry=${retry}`);
    return -1;
  }
  for (const key of ['recvFifo', 'xmitFifo'] as const) {
    const f = staged[key] as { head?: number; num?: number } | undefined;
    if (f && ((f.head ?? 0) >= UART_FIFO_LENGTH || (f.num ?? 0) > UART_FIFO_LENGTH)) {
      report(`serial: ${key === 'recvFifo' ? 'recv' : 'xmit'}_fifo head ${f.head} count ${f.num}`
        + ` do not fit its ${UART_FIFO_LENGTH} bytes`);
      return -EINVAL;
    }
  }
  if (staged.pollMsl !== undefined && (staged.pollMsl as number) >= 0) {
    report('serial: the stream polls modem status lines, which detvm\'s UART does not');
    return -EINVAL;
  }
  return 0;
}

/** @qemu hw/char/serial.c vmstate_serial */
export const vmstateSerial: VMStateDescription<SerialVm> = {
  name: 'serial',
  versionId: 3,
  minimumVersionId: 2,
  // serial_pre_load: thr_ipending -1 means "derive it from IIR".
  preLoad: (staged) => {
    staged.thrIpending = -1;
    staged.pollMsl = -1;
    return 0;
  },
  postLoad: serialVmPostLoad,
  fields: [
    vmstateUint16('divider', 'divider', { versionId: 2 }),
    vmstateUint8('rbr', 'rbr'), vmstateUint8('ier', 'ier'), vmstateUint8('iir', 'iir'),
    vmstateUint8('lcr', 'lcr'), vmstateUint8('mcr', 'mcr'), vmstateUint8('lsr', 'lsr'),
    vmstateUint8('msr', 'msr'), vmstateUint8('scr', 'scr'),
    vmstateUint8('fcr_vmstate', 'fcrVmstate', { versionId: 3 }),
  ],
  subsections: [
    sub('serial/thr_ipending', thrIpendingNeeded, [vmstateInt32('thr_ipending', 'thrIpending')]),
    sub('serial/tsr', (s) => s.tsrRetry !== 0, [
      vmstateUint32('tsr_retry', 'tsrRetry'), vmstateUint8('thr', 'thr'), vmstateUint8('tsr', 'tsr'),
    ]),
    sub('serial/recv_fifo', (s) => s.recvFifo.num > 0,
      [vmstateStruct('recv_fifo', 'recvFifo', vmstateFifo8)]),
    sub('serial/xmit_fifo', (s) => s.xmitFifo.num > 0,
      [vmstateStruct('xmit_fifo', 'xmitFifo', vmstateFifo8)]),
    sub('serial/fifo_timeout_timer', (s) => s.fifoTimeoutTimer !== -1,
      [vmstateTimer('fifo_timeout_timer', 'fifoTimeoutTimer')]),
    sub('serial/timeout_ipending', (s) => s.timeoutIpending !== 0,
      [vmstateInt32('timeout_ipending', 'timeoutIpending')]),
    sub('serial/poll', (s) => s.pollMsl >= 0, [
      vmstateInt32('poll_msl', 'pollMsl'), vmstateTimer('modem_status_poll', 'modemStatusPoll'),
    ]),
  ],
};

/** @qemu hw/char/serial.c vmstate_serial_mm: the UART as a struct inside the "serial" section. */
export const vmstateSerialMm: VMStateDescription<SerialVm> = {
  name: 'serial',
  versionId: 3,
  minimumVersionId: 2,
  fields: [vmstateStruct('serial', null, vmstateSerial)],
};

function fifoSave(f: Fifo8Vm, items: readonly number[]): void {
  f.data.fill(0);
  f.data.set(items);
  f.head = 0;
  f.num = items.length;
}

function fifoLoad(f: { data?: Uint8Array; head?: number; num?: number } | undefined): number[] {
  if (f === undefined) return [];
  const out: number[] = [];
  const data = f.data ?? new Uint8Array(UART_FIFO_LENGTH);
  for (let i = 0; i < (f.num ?? 0); i++) out.push(data[((f.head ?? 0) + i) % UART_FIFO_LENGTH] ?? 0);
  return out;
}

/** @qemu serial_pre_save, plus the subsection values taken from SerialState and its timer */
function serialPreSave(vm: SerialVm, d: SerialDevice): void {
  const s = d.s;
  vm.divider = s.divider;
  vm.rbr = s.rbr;
  vm.ier = s.ier;
  vm.iir = s.iir;
  vm.lcr = s.lcr;
  vm.mcr = s.mcr;
  vm.lsr = s.lsr;
  vm.msr = s.msr;
  vm.scr = s.scr;
  vm.fcrVmstate = s.fcr;
  vm.thrIpending = s.thrIpending;
  vm.tsrRetry = s.tsrRetry;
  vm.thr = s.thr;
  vm.tsr = s.tsr;
  fifoSave(vm.recvFifo, s.recvFifo);
  fifoSave(vm.xmitFifo, s.xmitFifo);
  vm.fifoTimeoutTimer = timerExpireTimeNs(d.fifoTimeoutTimer);
  vm.timeoutIpending = s.timeoutIpending;
  vm.pollMsl = -1;
  vm.modemStatusPoll = -1;
}

/** Apply a staged section: registers, FIFOs, flags, then serial_post_load's effects. */
function serialCommit(d: SerialDevice, staged: VMStateStaged): void {
  const s = d.s;
  const num = (k: string, dflt: number): number => (staged[k] as number | undefined) ?? dflt;
  s.divider = num('divider', s.divider);
  s.rbr = num('rbr', 0);
  s.ier = num('ier', 0);
  s.iir = num('iir', 0);
  s.lcr = num('lcr', 0);
  s.mcr = num('mcr', 0);
  s.lsr = num('lsr', 0);
  s.msr = num('msr', 0);
  s.scr = num('scr', 0);
  s.fcrVmstate = num('fcrVmstate', 0);
  const thr = num('thrIpending', -1);
  s.thrIpending = thr === -1 ? ((s.iir & UART_IIR_ID) === UART_IIR_THRI ? 1 : 0) : thr;
  s.tsrRetry = Math.min(num('tsrRetry', 0), MAX_XMIT_RETRY);
  s.thr = num('thr', 0);
  s.tsr = num('tsr', 0);
  s.recvFifo = fifoLoad(staged.recvFifo as Fifo8Vm | undefined);
  s.xmitFifo = fifoLoad(staged.xmitFifo as Fifo8Vm | undefined);
  s.timeoutIpending = num('timeoutIpending', 0);
  serialPostLoad(d, num('fifoTimeoutTimer', -1));
}

/**
 * Register the UART's "serial" section (instance 0, as QEMU's first serial-mm device).
 * @qemu hw/char/serial.c serial_mm_realize (dc->vmsd)
 */
export function serialVmstateRegister(sv: SaveVMState, d: SerialDevice): SaveStateEntry {
  const vm: SerialVm = {
    divider: 0, rbr: 0, ier: 0, iir: 0, lcr: 0, mcr: 0, lsr: 0, msr: 0, scr: 0, fcrVmstate: 0,
    thrIpending: 0, tsrRetry: 0, thr: 0, tsr: 0, recvFifo: fifoVm(), xmitFifo: fifoVm(),
    fifoTimeoutTimer: -1, timeoutIpending: 0, pollMsl: -1, modemStatusPoll: -1,
  };
  const vmsd: VMStateDescription<SerialVm> = {
    ...vmstateSerialMm,
    preSave: (v) => {
      serialPreSave(v, d);
      return 0;
    },
  };
  return vmstateRegister(sv, 0, vmsd, vm, { commit: (_v, staged) => serialCommit(d, staged) });
}
