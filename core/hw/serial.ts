// The ns16550a UART (hw/char/serial.c, serial_mm_init as the virt board uses it): registers,
// receive and transmit FIFOs, interrupt identification, the receive FIFO timeout, and the
// chardev frontend with can-read back-pressure. State is plain data (SerialState); the
// receive-timeout timer and the IRQ line are wiring, rebuilt on load.
// Invariants: recvFifo.length <= UART_FIFO_LENGTH; xmitFifo.length <= UART_FIFO_LENGTH.

import {
  type CharBackend, type Chardev, CHR_EVENT_BREAK, charBackendCreate, qemuChrFeAcceptInput, qemuChrFeAddWatch,
  qemuChrFeInit, qemuChrFeSetHandlers, qemuChrFeWrite,
} from '../char/index.ts';
import {
  type LoopMachine, type QEMUTimer, G_IO_HUP, G_IO_OUT, QEMU_CLOCK_VIRTUAL, NANOSECONDS_PER_SECOND, qemuClockGetNs,
  timerDel, timerModNs, timerNew,
} from '../loop/index.ts';
import { TRACE_DEVICES, traceEvent } from '../trace/index.ts';

export const UART_FIFO_LENGTH = 16;
const UART_LCR_DLAB = 0x80;
const UART_IER_MSI = 0x08;
const UART_IER_RLSI = 0x04;
const UART_IER_THRI = 0x02;
const UART_IER_RDI = 0x01;
const UART_IIR_NO_INT = 0x01;
const UART_IIR_ID = 0x06;
const UART_IIR_MSI = 0x00;
const UART_IIR_THRI = 0x02;
const UART_IIR_RDI = 0x04;
const UART_IIR_RLSI = 0x06;
const UART_IIR_CTI = 0x0c;
const UART_IIR_FE = 0xc0;
const UART_MCR_LOOP = 0x10;
const UART_MCR_OUT2 = 0x08;
const UART_MSR_DCD = 0x80;
const UART_MSR_DSR = 0x20;
const UART_MSR_CTS = 0x10;
const UART_MSR_ANY_DELTA = 0x0f;
export const UART_LSR_TEMT = 0x40;
export const UART_LSR_THRE = 0x20;
const UART_LSR_BI = 0x10;
const UART_LSR_OE = 0x02;
export const UART_LSR_DR = 0x01;
const UART_LSR_INT_ANY = 0x1e;
const UART_FCR_XFR = 0x04;
const UART_FCR_RFR = 0x02;
const UART_FCR_FE = 0x01;
const MAX_XMIT_RETRY = 4;

/** UART state as saved ('serial' section fields plus the FIFOs and pending flags). */
export interface SerialState {
  divider: number;
  rbr: number;
  thr: number;
  tsr: number;
  ier: number;
  iir: number;
  lcr: number;
  mcr: number;
  lsr: number;
  msr: number;
  scr: number;
  fcr: number;
  fcrVmstate: number;
  thrIpending: number;
  timeoutIpending: number;
  tsrRetry: number;
  recvFifoItl: number;
  /** Oldest first. */
  recvFifo: number[];
  xmitFifo: number[];
  lastBreakEnable: number;
  charTransmitTimeNs: number;
  baudbase: number;
}

/** A UART instance: its state and wiring (chardev frontend, IRQ line, timer). */
export interface SerialDevice {
  name: string;
  m: LoopMachine;
  s: SerialState;
  be: CharBackend;
  irq: (level: boolean) => void;
  fifoTimeoutTimer: QEMUTimer;
}

function serialUpdateIrq(d: SerialDevice): void {
  const s = d.s;
  let tmp = UART_IIR_NO_INT;
  if ((s.ier & UART_IER_RLSI) && (s.lsr & UART_LSR_INT_ANY)) tmp = UART_IIR_RLSI;
  else if ((s.ier & UART_IER_RDI) && s.timeoutIpending) tmp = UART_IIR_CTI;
  else if ((s.ier & UART_IER_RDI) && (s.lsr & UART_LSR_DR) && (!(s.fcr & UART_FCR_FE) || s.recvFifo.length >= s.recvFifoItl)) tmp = UART_IIR_RDI;
  else if ((s.ier & UART_IER_THRI) && s.thrIpending) tmp = UART_IIR_THRI;
  else if ((s.ier & UART_IER_MSI) && (s.msr & UART_MSR_ANY_DELTA)) tmp = UART_IIR_MSI;
  s.iir = tmp | (s.iir & 0xf0);
  d.irq(tmp !== UART_IIR_NO_INT);
}

function serialUpdateParameters(s: SerialState): void {
  if (s.divider === 0) return;
  let frame = 1;
  if (s.lcr & 0x08) frame++;
  const stopBits = s.lcr & 0x04 ? 2 : 1;
  const dataBits = (s.lcr & 0x03) + 5;
  frame += dataBits + stopBits;
  const speed = s.baudbase / s.divider;
  s.charTransmitTimeNs = Math.floor(NANOSECONDS_PER_SECOND / speed) * frame;
}

function recvFifoPut(s: SerialState, ch: number): void {
  if (s.recvFifo.length < UART_FIFO_LENGTH) s.recvFifo.push(ch);
  else s.lsr |= UART_LSR_OE; // receive overruns do not overwrite FIFO contents
}

function vnow(d: SerialDevice): number {
  return qemuClockGetNs(d.m.clocks, QEMU_CLOCK_VIRTUAL);
}

/** Transmit what the THR/FIFO holds; on a short write retry from an output watch. @qemu serial_xmit */
function serialXmit(d: SerialDevice): boolean {
  const s = d.s;
  for (let guard = 0; guard <= UART_FIFO_LENGTH; guard++) {
    if (s.tsrRetry <= 0) {
      if (s.fcr & UART_FCR_FE) {
        if (s.xmitFifo.length === 0) return false;
        s.tsr = s.xmitFifo.shift()!;
        if (s.xmitFifo.length === 0) s.lsr |= UART_LSR_THRE;
      } else if (s.lsr & UART_LSR_THRE) {
        return false;
      } else {
        s.tsr = s.thr;
        s.lsr |= UART_LSR_THRE;
        s.lsr &= ~UART_LSR_TEMT;
      }
    }
    if (s.mcr & UART_MCR_LOOP) {
      serialReceive1(d, Uint8Array.of(s.tsr));
    } else if (qemuChrFeWrite(d.be, Uint8Array.of(s.tsr)) !== 1) {
      if (s.tsrRetry >= 0 && s.tsrRetry < MAX_XMIT_RETRY && qemuChrFeAddWatch(d.be, G_IO_OUT | G_IO_HUP, () => serialXmit(d)) > 0) {
        s.tsrRetry++;
        return false;
      }
      s.tsrRetry = 0;
    } else {
      s.tsrRetry = 0;
    }
    if (!((s.fcr & UART_FCR_FE) && s.xmitFifo.length > 0)) break;
  }
  if (s.lsr & UART_LSR_THRE) {
    s.lsr |= UART_LSR_TEMT;
    s.thrIpending = 1;
    serialUpdateIrq(d);
  }
  return false;
}

function serialWriteFcr(d: SerialDevice, value: number): void {
  const s = d.s;
  let val = value & 0xff;
  if (s.fcr === val) return;
  if ((val ^ s.fcr) & UART_FCR_FE) val |= UART_FCR_XFR | UART_FCR_RFR;
  if (val & UART_FCR_RFR) {
    timerDel(d.fifoTimeoutTimer);
    s.timeoutIpending = 0;
    s.recvFifo = [];
  }
  if (val & UART_FCR_XFR) s.xmitFifo = [];
  if (val & UART_FCR_FE) {
    s.iir |= UART_IIR_FE;
    s.recvFifoItl = [1, 4, 8, 14][(val & 0xc0) >> 6]!;
  } else {
    s.iir &= ~UART_IIR_FE;
  }
  s.fcr = val & 0xc9;
  serialUpdateIrq(d);
}

/** A guest write to register `addr` (0..7). @qemu serial_ioport_write */
export function serialIoportWrite(d: SerialDevice, addr: number, value: number): void {
  const s = d.s;
  const val = value & 0xff;
  switch (addr & 7) {
    case 0:
      if (s.lcr & UART_LCR_DLAB) {
        s.divider = (s.divider & 0xff00) | val;
        serialUpdateParameters(s);
      } else {
        s.thr = val;
        if (s.fcr & UART_FCR_FE) {
          if (s.xmitFifo.length >= UART_FIFO_LENGTH) s.xmitFifo.shift(); // xmit overruns overwrite
          s.xmitFifo.push(val);
          s.lsr &= ~UART_LSR_TEMT;
        }
        s.thrIpending = 0;
        s.lsr &= ~UART_LSR_THRE;
        serialUpdateIrq(d);
        if (s.tsrRetry <= 0) serialXmit(d);
      }
      return;
    case 1:
      if (s.lcr & UART_LCR_DLAB) {
        s.divider = (s.divider & 0x00ff) | (val << 8);
        serialUpdateParameters(s);
      } else {
        const changed = s.ier ^ (val & 0x0f);
        s.ier = val & 0x0f;
        // Turning THRI on raises the THR-empty interrupt when THRE is set, even if a read of IIR
        // had cleared it (not in the datasheet; Windows relies on it). Turning it off clears it.
        if (changed & UART_IER_THRI) s.thrIpending = (s.ier & UART_IER_THRI) && (s.lsr & UART_LSR_THRE) ? 1 : 0;
        if (changed) serialUpdateIrq(d);
      }
      return;
    case 2:
      serialWriteFcr(d, val);
      return;
    case 3:
      s.lcr = val;
      serialUpdateParameters(s);
      s.lastBreakEnable = (val >> 6) & 1;
      return;
    case 4:
      s.mcr = val & 0x1f;
      return;
    case 5:
    case 6:
      return;
    case 7:
      s.scr = val;
      return;
  }
}

/** A guest read of register `addr` (0..7). @qemu serial_ioport_read */
export function serialIoportRead(d: SerialDevice, addr: number): number {
  const s = d.s;
  switch (addr & 7) {
    case 0: {
      if (s.lcr & UART_LCR_DLAB) return s.divider & 0xff;
      let ret: number;
      if (s.fcr & UART_FCR_FE) {
        ret = s.recvFifo.length === 0 ? 0 : s.recvFifo.shift()!;
        if (s.recvFifo.length === 0) s.lsr &= ~(UART_LSR_DR | UART_LSR_BI);
        else timerModNs(d.fifoTimeoutTimer, vnow(d) + s.charTransmitTimeNs * 4);
        s.timeoutIpending = 0;
      } else {
        ret = s.rbr;
        s.lsr &= ~(UART_LSR_DR | UART_LSR_BI);
      }
      serialUpdateIrq(d);
      if (!(s.mcr & UART_MCR_LOOP)) qemuChrFeAcceptInput(d.be);
      return ret;
    }
    case 1:
      return s.lcr & UART_LCR_DLAB ? (s.divider >> 8) & 0xff : s.ier;
    case 2: {
      const ret = s.iir;
      if ((ret & UART_IIR_ID) === UART_IIR_THRI) {
        s.thrIpending = 0;
        serialUpdateIrq(d);
      }
      return ret;
    }
    case 3:
      return s.lcr;
    case 4:
      return s.mcr;
    case 5: {
      const ret = s.lsr;
      if (s.lsr & (UART_LSR_BI | UART_LSR_OE)) {
        s.lsr &= ~(UART_LSR_BI | UART_LSR_OE);
        serialUpdateIrq(d);
      }
      return ret;
    }
    case 6: {
      if (s.mcr & UART_MCR_LOOP) return ((s.mcr & 0x0c) << 4) | ((s.mcr & 0x02) << 3) | ((s.mcr & 0x01) << 5);
      const ret = s.msr;
      if (s.msr & UART_MSR_ANY_DELTA) {
        s.msr &= 0xf0;
        serialUpdateIrq(d);
      }
      return ret;
    }
    default:
      return s.scr;
  }
}

/** How many bytes the UART takes from its chardev now. @qemu serial_can_receive */
export function serialCanReceive(s: SerialState): number {
  if (s.fcr & UART_FCR_FE) {
    if (s.recvFifo.length >= UART_FIFO_LENGTH) return 0;
    // Advertise up to the trigger level, then 1 at a time, so the guest sees its ITL honoured.
    return s.recvFifo.length <= s.recvFifoItl ? s.recvFifoItl - s.recvFifo.length : 1;
  }
  return s.lsr & UART_LSR_DR ? 0 : 1;
}

function serialReceive1(d: SerialDevice, buf: Uint8Array): void {
  const s = d.s;
  traceEvent(d.m, TRACE_DEVICES, 'serial_receive', { len: buf.length });
  if (s.fcr & UART_FCR_FE) {
    for (const b of buf) recvFifoPut(s, b);
    s.lsr |= UART_LSR_DR;
    timerModNs(d.fifoTimeoutTimer, vnow(d) + s.charTransmitTimeNs * 4);
  } else {
    if (s.lsr & UART_LSR_DR) s.lsr |= UART_LSR_OE;
    s.rbr = buf[0]!;
    s.lsr |= UART_LSR_DR;
  }
  serialUpdateIrq(d);
}

function serialEvent(d: SerialDevice, event: number): void {
  if (event !== CHR_EVENT_BREAK) return;
  const s = d.s;
  s.rbr = 0;
  recvFifoPut(s, 0);
  s.lsr |= UART_LSR_BI | UART_LSR_DR;
  serialUpdateIrq(d);
}

function fifoTimeoutInt(d: SerialDevice): void {
  if (d.s.recvFifo.length > 0) {
    d.s.timeoutIpending = 1;
    serialUpdateIrq(d);
  }
}

/** Power-on / system_reset state. @qemu serial_reset */
export function serialReset(d: SerialDevice): void {
  const s = d.s;
  Object.assign(s, {
    rbr: 0, ier: 0, iir: UART_IIR_NO_INT, lcr: 0, lsr: UART_LSR_TEMT | UART_LSR_THRE,
    msr: UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS, divider: 0x0c, mcr: UART_MCR_OUT2, scr: 0, tsrRetry: 0,
    charTransmitTimeNs: Math.floor(NANOSECONDS_PER_SECOND / 9600) * 10, recvFifo: [], xmitFifo: [],
    thrIpending: 0, lastBreakEnable: 0, fcr: 0, timeoutIpending: 0,
  });
  timerDel(d.fifoTimeoutTimer);
  d.irq(false);
}

/**
 * Create a UART on chardev `chr` (null: no chardev, output discarded as with `-serial none`).
 * Returns an error text when the chardev already has a frontend.
 */
export function serialMmInit(m: LoopMachine, name: string, chr: Chardev | null, irq: (level: boolean) => void, baudbase: number): SerialDevice | string {
  const s: SerialState = {
    divider: 0, rbr: 0, thr: 0, tsr: 0, ier: 0, iir: 0, lcr: 0, mcr: 0, lsr: 0, msr: 0, scr: 0, fcr: 0, fcrVmstate: 0,
    thrIpending: 0, timeoutIpending: 0, tsrRetry: 0, recvFifoItl: 1, recvFifo: [], xmitFifo: [], lastBreakEnable: 0,
    charTransmitTimeNs: 0, baudbase,
  };
  const d: SerialDevice = {
    name, m, s, be: charBackendCreate(), irq,
    fifoTimeoutTimer: null as unknown as QEMUTimer,
  };
  d.fifoTimeoutTimer = timerNew(m.loop.tlg, QEMU_CLOCK_VIRTUAL, 1, 'fifo_timeout_int', () => fifoTimeoutInt(d));
  if (chr) {
    const err = qemuChrFeInit(d.be, chr);
    if (err) return err.desc;
    qemuChrFeSetHandlers(d.be, () => serialCanReceive(d.s), (_o, buf) => serialReceive1(d, buf), (_o, ev) => serialEvent(d, ev), null, d, true);
  }
  serialReset(d);
  return d;
}

/**
 * After a load has put the migrated registers, FIFOs and flags into `d.s`: re-derive what QEMU's
 * serial_post_load derives (the break-enable latch, FCR with its IIR FIFO bits and trigger level,
 * the character time), clamp a transmit retry count and re-arm its output watch, and re-arm the
 * receive-timeout timer at `fifoTimeoutNs` (-1: not armed). FIFO contents are kept, as in QEMU
 * 7.2, whose serial_write_fcr only sets the register. @qemu hw/char/serial.c serial_post_load
 */
export function serialPostLoad(d: SerialDevice, fifoTimeoutNs = -1): void {
  const s = d.s;
  if (s.tsrRetry > MAX_XMIT_RETRY) s.tsrRetry = MAX_XMIT_RETRY;
  if (s.tsrRetry > 0) qemuChrFeAddWatch(d.be, G_IO_OUT | G_IO_HUP, () => serialXmit(d));
  s.lastBreakEnable = (s.lcr >> 6) & 1;
  const val = s.fcrVmstate & 0xff;
  s.fcr = val;
  if (val & UART_FCR_FE) {
    s.iir |= UART_IIR_FE;
    s.recvFifoItl = [1, 4, 8, 14][(val & 0xc0) >> 6]!;
  } else {
    s.iir &= ~UART_IIR_FE;
  }
  serialUpdateParameters(s);
  if (fifoTimeoutNs >= 0) timerModNs(d.fifoTimeoutTimer, fifoTimeoutNs);
  else timerDel(d.fifoTimeoutTimer);
}

/** Level of the UART's interrupt line as its registers say (serial_update_irq's result). */
export function serialIrqLevel(s: SerialState): boolean {
  return (s.iir & UART_IIR_NO_INT) === 0;
}
