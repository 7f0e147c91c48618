// The HMP memory dump of x and xp (monitor/misc.c memory_dump) and monitor_printc: 16 bytes per
// line (8 for byte units), QEMU's per-format widths, target byte order little-endian (riscv),
// addresses as TARGET_FMT_lx (virtual) or 16 hex digits (physical).

import type { Monitor, MonitorSet } from './monitor.ts';
import { monitorGetCpuIndex, monitorPrintf } from './monitor.ts';
import type { HmpArgs } from './hmp-commands.ts';

/** A character constant as QEMU prints it: 'c', with \' \\ \n \r and \xNN escapes. @qemu monitor_printc */
export function monitorPrintc(c: number): string {
  let body: string;
  if (c === 0x27) body = "\\'";
  else if (c === 0x5c) body = '\\\\';
  else if (c === 0x0a) body = '\\n';
  else if (c === 0x0d) body = '\\r';
  else if (c >= 32 && c <= 126) body = String.fromCharCode(c);
  else body = '\\x' + (c >>> 0).toString(16).padStart(2, '0');
  return `'${body}'`;
}

function loadLe(buf: Uint8Array, at: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(buf[at + i] ?? 0);
  return v;
}

function formatValue(format: string, v: bigint, wsize: number, maxDigits: number): string {
  switch (format) {
    case 'o': return (v === 0n ? '0' : '0' + v.toString(8)).padStart(maxDigits, ' ');
    case 'u': return v.toString().padStart(maxDigits, ' ');
    case 'd': return BigInt.asIntN(64, v).toString().padStart(maxDigits, ' ');
    case 'c': return monitorPrintc(Number(v));
    default: return '0x' + v.toString(16).padStart(maxDigits, '0');
  }
}

/**
 * Dump `count` units of `size` bytes in `format` from `addr`.
 * @qemu monitor/misc.c memory_dump (hmp_memory_dump, hmp_physical_memory_dump)
 */
export function memoryDump(mons: MonitorSet, mon: Monitor, args: HmpArgs, isPhysical: boolean): void {
  const mc = mons.machine;
  const count = Number(BigInt.asIntN(32, (args.get('count') as bigint | undefined) ?? 1n));
  const format = String.fromCharCode(Number((args.get('format') as bigint | undefined) ?? 0x78n));
  let wsize = Number(BigInt.asIntN(32, (args.get('size') as bigint | undefined) ?? 4n));
  const raw = (args.get('addr') as bigint | undefined) ?? 0n;
  const bits = BigInt(mc.targetLongBits);
  // x takes a target_long, xp a hwaddr (64 bits).
  let addr = isPhysical ? BigInt.asUintN(64, raw) : BigInt.asUintN(Number(bits), raw);
  const cpu = monitorGetCpuIndex(mons, mon);
  if (cpu < 0 && (format === 'i' || !isPhysical)) {
    monitorPrintf(mons, mon, 'Can not dump without CPU\n');
    return;
  }
  if (format === 'i') {
    // detvm has no disassembler (QEMU: monitor_disas with capstone or its own).
    monitorPrintf(mons, mon, 'detvm: no disassembler for this target\n');
    return;
  }
  let len = wsize * count;
  const lineSize = wsize === 1 ? 8 : 16;
  let maxDigits = 0;
  switch (format) {
    case 'o': maxDigits = Math.ceil((wsize * 8) / 3); break;
    case 'u':
    case 'd': maxDigits = Math.ceil((wsize * 8 * 10) / 33); break;
    case 'c': wsize = 1; break;
    default: maxDigits = (wsize * 8) / 4; break;
  }
  if (![1, 2, 4, 8].includes(wsize)) wsize = 1; // QEMU's `default: case 1` load
  const addrWidth = isPhysical ? 16 : Number(bits) / 4;
  for (let lines = 0; len > 0 && lines < 1_000_000; lines++) {
    let line = addr.toString(16).padStart(addrWidth, '0') + ':';
    const l = Math.min(len, lineSize);
    const buf = isPhysical ? mc.physMemoryRead(addr, l) : mc.cpuMemoryRead(cpu, addr, l);
    if (buf === null) {
      monitorPrintf(mons, mon, line + ' Cannot access memory\n');
      break;
    }
    for (let i = 0; i < l; i += wsize) line += ' ' + formatValue(format, loadLe(buf, i, wsize), wsize, maxDigits);
    monitorPrintf(mons, mon, line + '\n');
    addr = isPhysical ? BigInt.asUintN(64, addr + BigInt(l)) : BigInt.asUintN(Number(bits), addr + BigInt(l));
    len -= l;
  }
}
