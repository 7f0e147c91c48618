// From QemuOpts to a typed ChardevBackend (QAPI's ChardevBackend), per driver: the parse
// callbacks of chardev/char.c (qemu_chr_parse_opts, qemu_chr_parse_common), char-socket.c
// (qemu_chr_parse_socket), char-file.c, char-stdio.c, char-ringbuf.c and char-mux.c, 7.2.
// Optional members left undefined mean QAPI's has_X = false (so QMP and CLI defaults can differ).

import type { SocketAddress } from '../core/host/index.ts';
import {
  type QemuOpts, qemuOptFind, qemuOptGet, qemuOptGetBool, qemuOptGetNumber,
} from './qemu-option.ts';

/** @qemu qapi/char.json ChardevCommon */
export interface ChardevCommon {
  logfile: string | null;
  logappend: boolean;
}

/** @qemu qapi/char.json ChardevSocket */
export interface ChardevSocket {
  addr: SocketAddress;
  server?: boolean;
  wait?: boolean;
  telnet?: boolean;
  tn3270?: boolean;
  websocket?: boolean;
  nodelay?: boolean;
  /** Seconds between reconnection attempts (client only). */
  reconnect?: number;
  tlsCreds?: string;
  tlsAuthz?: string;
}

/** The backends detvm implements. @qemu qapi/char.json ChardevBackend */
export type ChardevBackend =
  | { type: 'null'; common: ChardevCommon }
  | { type: 'socket'; common: ChardevCommon; sock: ChardevSocket }
  | { type: 'file'; common: ChardevCommon; out: string; in: string | null; append: boolean }
  | { type: 'stdio'; common: ChardevCommon; signal?: boolean }
  | { type: 'ringbuf' | 'memory'; common: ChardevCommon; size?: number }
  | { type: 'mux'; common: ChardevCommon; chardev: string };

export type ChardevBackendType = ChardevBackend['type'];

/** Driver names detvm implements, as query-chardev-backends lists them. */
export const CHARDEV_BACKEND_NAMES: readonly ChardevBackendType[] = [
  'file', 'memory', 'mux', 'null', 'ringbuf', 'socket', 'stdio',
];

/** QEMU 7.2 drivers (riscv32 build) that detvm does not implement. */
const QEMU_ONLY_BACKENDS = [
  'braille', 'dbus', 'msmouse', 'parallel', 'pipe', 'pty', 'qemu-vdagent', 'serial', 'spiceport',
  'spicevmc', 'testdev', 'udp', 'vc', 'wctablet',
];

/** @qemu chardev/char.c chardev_alias_table */
function chardevAliasTranslate(name: string): string {
  if (name === 'parport') return 'parallel';
  if (name === 'tty') return 'serial';
  return name;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** @qemu chardev/char.c qemu_chr_parse_common */
export function qemuChrParseCommon(opts: QemuOpts): ChardevCommon {
  const logfile = qemuOptGet(opts, 'logfile');
  return { logfile, logappend: qemuOptGetBool(opts, 'logappend', false) };
}

/** @qemu chardev/char-socket.c qemu_chr_parse_socket */
export function qemuChrParseSocket(opts: QemuOpts): ParseResult<ChardevSocket> {
  const path = qemuOptGet(opts, 'path');
  const host = qemuOptGet(opts, 'host');
  const port = qemuOptGet(opts, 'port');
  const fd = qemuOptGet(opts, 'fd');
  if (Number(path !== null) + Number(fd !== null) + Number(host !== null) > 1) {
    return { ok: false, error: "None or one of 'path', 'fd' or 'host' option required." };
  }
  if (host !== null && port === null) return { ok: false, error: 'chardev: socket: no port given' };
  if (qemuOptGet(opts, 'delay') !== null && qemuOptGet(opts, 'nodelay') !== null) {
    return { ok: false, error: "'delay' and 'nodelay' are mutually exclusive" };
  }
  let addr: SocketAddress;
  if (path !== null) {
    addr = {
      type: 'unix', path, tight: qemuOptGetBool(opts, 'tight', true),
      abstract: qemuOptGetBool(opts, 'abstract', false),
    };
  } else if (host !== null) {
    addr = { type: 'inet', host, port: port! };
    const to = qemuOptFind(opts, 'to');
    if (to) addr.to = qemuOptGetNumber(opts, 'to', 0);
    if (qemuOptFind(opts, 'ipv4')) addr.ipv4 = qemuOptGetBool(opts, 'ipv4', false);
    if (qemuOptFind(opts, 'ipv6')) addr.ipv6 = qemuOptGetBool(opts, 'ipv6', false);
  } else {
    addr = { type: 'fd', str: fd ?? '' };
  }
  const sock: ChardevSocket = { addr };
  const hasDelay = qemuOptGet(opts, 'delay') !== null || qemuOptGet(opts, 'nodelay') !== null;
  if (hasDelay) {
    sock.nodelay = !qemuOptGetBool(opts, 'delay', true) || qemuOptGetBool(opts, 'nodelay', false);
  }
  // The command line defaults server to off (QMP: on), hence "has_server" is always true here.
  sock.server = qemuOptGetBool(opts, 'server', false);
  if (qemuOptGet(opts, 'telnet') !== null) sock.telnet = qemuOptGetBool(opts, 'telnet', false);
  if (qemuOptGet(opts, 'tn3270') !== null) sock.tn3270 = qemuOptGetBool(opts, 'tn3270', false);
  if (qemuOptGet(opts, 'websocket') !== null) {
    sock.websocket = qemuOptGetBool(opts, 'websocket', false);
  }
  // The command line defaults wait to on for a server (QMP: off).
  if (qemuOptFind(opts, 'wait') || sock.server) sock.wait = qemuOptGetBool(opts, 'wait', true);
  if (qemuOptFind(opts, 'reconnect')) sock.reconnect = qemuOptGetNumber(opts, 'reconnect', 0);
  const tlsCreds = qemuOptGet(opts, 'tls-creds');
  const tlsAuthz = qemuOptGet(opts, 'tls-authz');
  if (tlsCreds !== null) sock.tlsCreds = tlsCreds;
  if (tlsAuthz !== null) sock.tlsAuthz = tlsAuthz;
  return { ok: true, value: sock };
}

/** The ringbuf size as QEMU reads it: qemu_opt_get_size stored in an int (truncated). */
function ringbufSizeOpt(opts: QemuOpts): number | undefined {
  const raw = qemuOptGetNumber(opts, 'size', 0);
  const val = Number(BigInt.asIntN(32, BigInt(raw)));
  return val !== 0 ? val : undefined;
}

/**
 * Parse the driver-specific options of `opts` into a ChardevBackend.
 * @qemu chardev/char.c qemu_chr_parse_opts
 */
export function qemuChrParseOpts(opts: QemuOpts): ParseResult<ChardevBackend> {
  const raw = qemuOptGet(opts, 'backend');
  if (raw === null) {
    return { ok: false, error: `chardev: "${opts.id ?? '(null)'}" missing backend` };
  }
  const name = chardevAliasTranslate(raw);
  const common = qemuChrParseCommon(opts);
  switch (name) {
    case 'null':
      return { ok: true, value: { type: 'null', common } };
    case 'socket': {
      const s = qemuChrParseSocket(opts);
      return s.ok ? { ok: true, value: { type: 'socket', common, sock: s.value } } : s;
    }
    case 'file': {
      const path = qemuOptGet(opts, 'path');
      if (path === null) return { ok: false, error: 'chardev: file: no filename given' };
      const input = qemuOptGet(opts, 'in') ?? qemuOptGet(opts, 'input-path');
      const append = qemuOptGetBool(opts, 'append', false);
      return { ok: true, value: { type: 'file', common, out: path, in: input, append } };
    }
    case 'stdio':
      const signal = qemuOptGetBool(opts, 'signal', true);
      return { ok: true, value: { type: 'stdio', common, signal } };
    case 'ringbuf':
    case 'memory': {
      const size = ringbufSizeOpt(opts);
      const value: ChardevBackend = size === undefined
        ? { type: name, common }
        : { type: name, common, size };
      return { ok: true, value };
    }
    case 'mux': {
      const chardev = qemuOptGet(opts, 'chardev');
      if (chardev === null) return { ok: false, error: 'chardev: mux: no chardev given' };
      return { ok: true, value: { type: 'mux', common, chardev } };
    }
    default:
      if (QEMU_ONLY_BACKENDS.includes(name)) {
        return { ok: false, error: `chardev backend '${name}' is not supported by detvm` };
      }
      return { ok: false, error: `'${name}' is not a valid char driver name` };
  }
}

/**
 * "Available chardev backend types: ..." as `-chardev help` prints it. @qemu qemu_chr_print_types
 */
export function qemuChrBackendHelp(): string {
  const names = CHARDEV_BACKEND_NAMES.map((n) => `\n  ${n}`).join('');
  return `Available chardev backend types: ${names}\n`;
}
