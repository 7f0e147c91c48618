// The HMP expression evaluator (monitor/hmp.c get_expr and expr_*): int64 arithmetic with
// precedence + - (lowest), & | ^, * / %, then unary + - ~, parentheses, 'c' character constants,
// $reg registers and strtoull numbers (0x hex, 0 octal, decimal). Errors print QEMU's text and a
// newline on the monitor. Recursion is bounded by the line length (at most 4095 bytes).

import type { MonitorSet, Monitor } from './monitor.ts';
import { monitorGetCpuIndex, monitorPrintf } from './monitor.ts';

class ExprError extends Error {}

interface ExprState {
  s: string;
  pos: number;
  mons: MonitorSet;
  mon: Monitor;
}

const I64 = (v: bigint): bigint => BigInt.asIntN(64, v);

export function isSpaceCode(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function cur(st: ExprState): string {
  return st.s[st.pos] ?? '\0';
}

function fail(st: ExprState, msg: string): never {
  monitorPrintf(st.mons, st.mon, msg + '\n');
  throw new ExprError(msg);
}

function next(st: ExprState): void {
  if (st.pos < st.s.length) {
    st.pos++;
    while (st.pos < st.s.length && isSpaceCode(st.s.charCodeAt(st.pos))) st.pos++;
  }
}

function skipSpaces(st: ExprState): void {
  while (st.pos < st.s.length && isSpaceCode(st.s.charCodeAt(st.pos))) st.pos++;
}

/** C strtoull(s, &end, 0) at `pos`: returns the value (or 'range') and the end position. */
export function strtoull0(s: string, pos: number): { value: bigint | 'range'; end: number } {
  let p = pos;
  while (p < s.length && isSpaceCode(s.charCodeAt(p))) p++;
  let neg = false;
  if (s[p] === '+' || s[p] === '-') {
    neg = s[p] === '-';
    p++;
  }
  let base = 10;
  let digits = '0123456789';
  if (s[p] === '0' && (s[p + 1] === 'x' || s[p + 1] === 'X') && /[0-9a-fA-F]/.test(s[p + 2] ?? '')) {
    base = 16;
    digits = '0123456789abcdef';
    p += 2;
  } else if (s[p] === '0') {
    base = 8;
    digits = '01234567';
  }
  const start = p;
  let v = 0n;
  let overflow = false;
  while (p < s.length && digits.includes((s[p] ?? '').toLowerCase())) {
    v = v * BigInt(base) + BigInt(digits.indexOf(s[p]!.toLowerCase()));
    if (v > 0xffffffffffffffffn) overflow = true;
    p++;
  }
  if (p === start) return { value: 0n, end: pos };
  if (overflow) return { value: 'range', end: p };
  return { value: neg ? BigInt.asUintN(64, -v) : v, end: p };
}

function exprUnary(st: ExprState, depth: number): bigint {
  if (depth > 10_000) fail(st, "')' expected");
  const c = cur(st);
  switch (c) {
    case '+': next(st); return exprUnary(st, depth + 1);
    case '-': next(st); return I64(-exprUnary(st, depth + 1));
    case '~': next(st); return I64(~exprUnary(st, depth + 1));
    case '(': {
      next(st);
      const n = exprSum(st, depth + 1);
      if (cur(st) !== ')') fail(st, "')' expected");
      next(st);
      return n;
    }
    case "'": {
      st.pos++;
      if (st.pos >= st.s.length) fail(st, 'character constant expected');
      // `n = *pch` with a signed char on the x86-64 hosts QEMU 7.2 ships for.
      const n = BigInt.asIntN(8, BigInt(st.s.charCodeAt(st.pos)));
      st.pos++;
      if (cur(st) !== "'") fail(st, "missing terminating ' character");
      next(st);
      return n;
    }
    case '$': {
      st.pos++;
      let name = '';
      while (/[a-zA-Z0-9_.]/.test(cur(st)) && st.pos < st.s.length) {
        if (name.length < 127) name += cur(st);
        st.pos++;
      }
      skipSpaces(st);
      const v = getMonitorDef(st.mons, st.mon, name);
      if (v === null) fail(st, 'unknown register');
      return v;
    }
    case '\0':
      return fail(st, 'unexpected end of expression');
    default: {
      const r = strtoull0(st.s, st.pos);
      if (r.value === 'range') fail(st, 'number too large');
      if (r.end === st.pos) fail(st, `invalid char '${c}' in expression`);
      st.pos = r.end;
      skipSpaces(st);
      return I64(r.value);
    }
  }
}

function exprProd(st: ExprState, depth: number): bigint {
  let val = exprUnary(st, depth);
  for (;;) {
    const op = cur(st);
    if (op !== '*' && op !== '/' && op !== '%') return val;
    next(st);
    const val2 = exprUnary(st, depth);
    if (op === '*') {
      val = I64(val * val2);
    } else {
      if (val2 === 0n) fail(st, 'division by zero');
      val = I64(op === '/' ? val / val2 : val % val2);
    }
  }
}

function exprLogic(st: ExprState, depth: number): bigint {
  let val = exprProd(st, depth);
  for (;;) {
    const op = cur(st);
    if (op !== '&' && op !== '|' && op !== '^') return val;
    next(st);
    const val2 = exprProd(st, depth);
    val = op === '&' ? val & val2 : op === '|' ? val | val2 : val ^ val2;
  }
}

function exprSum(st: ExprState, depth: number): bigint {
  let val = exprLogic(st, depth);
  for (;;) {
    const op = cur(st);
    if (op !== '+' && op !== '-') return val;
    next(st);
    const val2 = exprLogic(st, depth);
    val = I64(op === '+' ? val + val2 : val - val2);
  }
}

/**
 * Register value for `$name` on the monitor's CPU, cast to target_long and widened to int64 as
 * QEMU's get_monitor_def does; null for "unknown register". @qemu monitor/misc.c get_monitor_def
 */
export function getMonitorDef(mons: MonitorSet, mon: Monitor, name: string): bigint | null {
  const cpu = monitorGetCpuIndex(mons, mon);
  if (cpu < 0) return null;
  const raw = mons.machine.getMonitorDef(cpu, name);
  if (raw === null) return null;
  return BigInt.asIntN(mons.machine.targetLongBits, raw);
}

/**
 * Evaluate an expression at `pos`. Returns the value and the end position, or null after
 * printing the error. @qemu monitor/hmp.c get_expr
 */
export function getExpr(mons: MonitorSet, mon: Monitor, s: string, pos: number): { value: bigint; end: number } | null {
  const st: ExprState = { s, pos, mons, mon };
  try {
    skipSpaces(st);
    const value = exprSum(st, 0);
    return { value, end: st.pos };
  } catch (e) {
    if (e instanceof ExprError) return null;
    throw e;
  }
}
