// The "chardev" option list and the legacy chardev syntax (chardev/char.c, 7.2):
// qemu_chardev_opts, qemu_chr_parse_compat ("tcp:HOST:PORT,...", "telnet:", "unix:PATH,...",
// "file:PATH", "stdio", "null", "mon:SPEC"). Both produce QemuOpts; char-parse.ts turns them
// into a typed ChardevBackend. Errors carry QEMU's texts and never throw.

import type { ChrReport } from '../core/char/index.ts';
import {
  type QemuOptDesc, type QemuOpts, type QemuOptsList, type OptsResult, qemuOptSet, qemuOptsCreate,
  qemuOptsDel, qemuOptsDoParse, qemuOptsParseNoisily,
} from './qemu-option.ts';

const S = 'string' as const;
const B = 'bool' as const;
const N = 'number' as const;

/** @qemu chardev/char.c qemu_chardev_opts (7.2, Linux), plus detvm's `in` (see docs). */
const CHARDEV_OPT_DESC: readonly QemuOptDesc[] = [
  { name: 'backend', type: S }, { name: 'path', type: S }, { name: 'host', type: S },
  { name: 'port', type: S }, { name: 'fd', type: S }, { name: 'localaddr', type: S },
  { name: 'localport', type: S }, { name: 'to', type: N }, { name: 'ipv4', type: B },
  { name: 'ipv6', type: B }, { name: 'wait', type: B }, { name: 'server', type: B },
  { name: 'delay', type: B }, { name: 'nodelay', type: B }, { name: 'reconnect', type: N },
  { name: 'telnet', type: B }, { name: 'tn3270', type: B }, { name: 'tls-creds', type: S },
  { name: 'tls-authz', type: S }, { name: 'websocket', type: B }, { name: 'width', type: N },
  { name: 'height', type: N }, { name: 'cols', type: N }, { name: 'rows', type: N },
  { name: 'mux', type: B }, { name: 'signal', type: B }, { name: 'name', type: S },
  { name: 'debug', type: N }, { name: 'size', type: 'size' }, { name: 'chardev', type: S },
  { name: 'append', type: B }, { name: 'logfile', type: S }, { name: 'logappend', type: B },
  { name: 'mouse', type: B }, { name: 'clipboard', type: B },
  { name: 'tight', type: B, defValueStr: 'on' }, { name: 'abstract', type: B },
  // Input file of the file backend: QEMU 7.2 has it only in QMP ("in"); 9.1 added input-path.
  { name: 'in', type: S }, { name: 'input-path', type: S },
];

/** A fresh "chardev" option list (QEMU has one global list; detvm one per command line). */
export function qemuChardevOptsList(): QemuOptsList {
  return {
    name: 'chardev', impliedOptName: 'backend', mergeLists: false, desc: [...CHARDEV_OPT_DESC],
    head: [],
  };
}

/** Parse a `-chardev` argument. @qemu softmmu/vl.c case QEMU_OPTION_chardev */
export function qemuChardevOptsParse(list: QemuOptsList, optarg: string): OptsResult<QemuOpts> {
  return qemuOptsParseNoisily(list, optarg, true);
}

/**
 * Result of the legacy parser: opts, or nothing (`report` says why when QEMU printed something).
 */
export type CompatResult = { ok: true; opts: QemuOpts } | { ok: false; report: ChrReport | null };

function fail(opts: QemuOpts | null, msg: string | null): CompatResult {
  if (opts) qemuOptsDel(opts);
  return { ok: false, report: msg === null ? null : { level: 'error', msg } };
}

function set(opts: QemuOpts, name: string, value: string): void {
  const err = qemuOptSet(opts, name, value);
  if (err !== null) throw new Error(`chardev compat: ${err}`); // error_abort: a detvm bug
}

/** sscanf("%64[^:]:%32[^,]%n") then sscanf(":%32[^,]%n"): [host, port, rest index] or null. */
function scanHostPort(p: string, portStop: string): [string, string, number] | null {
  const colon = p.indexOf(':');
  if (colon > 0 && colon <= 64) {
    let end = colon + 1;
    while (end < p.length && !portStop.includes(p[end]!) && end - colon - 1 < 32) end++;
    if (end > colon + 1) return [p.slice(0, colon), p.slice(colon + 1, end), end];
  }
  if (p[0] !== ':') return null;
  let end = 1;
  while (end < p.length && !portStop.includes(p[end]!) && end - 1 < 32) end++;
  if (end === 1) return null;
  return ['', p.slice(1, end), end];
}

const SIMPLE_BACKENDS = ['null', 'pty', 'msmouse', 'wctablet', 'braille', 'testdev', 'stdio'];

/**
 * Turn a legacy chardev spec (as given to -serial, -monitor, -qmp...) into QemuOpts labelled
 * `label`. `mon:SPEC` sets mux=on (and signal=off for stdio) when `permitMuxMon`; the caller
 * then creates an HMP monitor on the chardev. @qemu chardev/char.c qemu_chr_parse_compat
 */
export function qemuChrParseCompat(
  list: QemuOptsList, label: string, filename: string, permitMuxMon: boolean,
): CompatResult {
  const created = qemuOptsCreate(list, label, true);
  if (!created.ok) return fail(null, created.error);
  const opts = created.opts;
  let f = filename;
  if (f.startsWith('mon:')) {
    if (!permitMuxMon) return fail(opts, "mon: isn't supported in this context");
    f = f.slice(4);
    set(opts, 'mux', 'on');
    // Ctrl-C goes to the guest when the monitor is muxed on stdio (what -nographic does).
    if (f === 'stdio') set(opts, 'signal', 'off');
  }
  if (SIMPLE_BACKENDS.includes(f)) {
    set(opts, 'backend', f);
    return { ok: true, opts };
  }
  const pathForms = [['file:', 'file'], ['pipe:', 'pipe'], ['pty:', 'pty']] as const;
  for (const [prefix, backend] of pathForms) {
    if (f.startsWith(prefix)) {
      set(opts, 'backend', backend);
      set(opts, 'path', f.slice(prefix.length));
      return { ok: true, opts };
    }
  }
  const sock = ['tcp:', 'telnet:', 'tn3270:', 'websocket:'].find((pre) => f.startsWith(pre));
  if (sock) {
    const p = f.slice(sock.length);
    const hp = scanHostPort(p, ',');
    if (!hp) return fail(opts, null);
    set(opts, 'backend', 'socket');
    set(opts, 'host', hp[0]);
    set(opts, 'port', hp[1]);
    if (p[hp[2]] === ',') {
      const err = qemuOptsDoParse(opts, p.slice(hp[2] + 1), null);
      if (err !== null) return fail(opts, err);
    }
    if (sock !== 'tcp:') set(opts, sock.slice(0, -1), 'on');
    return { ok: true, opts };
  }
  if (f.startsWith('unix:')) {
    set(opts, 'backend', 'socket');
    const err = qemuOptsDoParse(opts, f.slice(5), 'path');
    if (err !== null) return fail(opts, err);
    return { ok: true, opts };
  }
  if (f.startsWith('udp:') || f.startsWith('vc') || f === 'con:' || f.startsWith('COM')) {
    return compatUnsupported(opts, f);
  }
  if (f.startsWith('/dev/parport') || f.startsWith('/dev/ppi')) {
    set(opts, 'backend', 'parallel');
    set(opts, 'path', f);
    return { ok: true, opts };
  }
  if (f.startsWith('/dev/')) {
    set(opts, 'backend', 'serial');
    set(opts, 'path', f);
    return { ok: true, opts };
  }
  return fail(opts, `'${f}' is not a valid char driver`);
}

/** Forms QEMU parses but detvm has no backend for: keep QEMU's shape, fail at creation. */
function compatUnsupported(opts: QemuOpts, f: string): CompatResult {
  let backend = 'serial';
  if (f.startsWith('udp:')) backend = 'udp';
  else if (f.startsWith('vc')) backend = 'vc';
  else if (f === 'con:') backend = 'console';
  set(opts, 'backend', backend);
  return { ok: true, opts };
}
