// QMP's view of chardev backends (qapi/char.json): turning the `backend` argument of chardev-add
// ({"type": "socket", "data": {"addr": {"type": "inet", "data": {...}}, ...}}) into a typed
// ChardevBackend with the QAPI input visitor's error texts, and query-chardev-backends. QMP
// defaults differ from the command line: a socket without "server" listens, without "wait" does
// not wait (qmp_chardev_open_socket).

import type { SocketAddress } from '../core/host/index.ts';
import {
  CHARDEV_BACKEND_NAMES, type ChardevBackend, type ChardevCommon, type ChardevSocket,
  type ParseResult,
} from './char-parse.ts';

type Json = Record<string, unknown>;

class QapiError extends Error {}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** @qemu qapi/qobject-input-visitor.c (error texts) */
function member<T extends 'string' | 'boolean' | 'number' | 'object'>(
  o: Json, key: string, path: string, type: T, required: boolean,
): unknown {
  const v = o[key];
  if (v === undefined) {
    if (required) throw new QapiError(`Parameter '${path}${key}' is missing`);
    return undefined;
  }
  let ok: boolean;
  if (type === 'object') ok = isObject(v);
  else if (type === 'number') ok = Number.isInteger(v);
  else ok = typeof v === type;
  if (!ok) {
    const expected = type === 'object' ? 'object' : type === 'number' ? 'integer' : type;
    throw new QapiError(`Invalid parameter type for '${path}${key}', expected: ${expected}`);
  }
  return v;
}

function str(o: Json, key: string, path: string, required = false): string | undefined {
  return member(o, key, path, 'string', required) as string | undefined;
}

function bool(o: Json, key: string, path: string): boolean | undefined {
  return member(o, key, path, 'boolean', false) as boolean | undefined;
}

function num(o: Json, key: string, path: string): number | undefined {
  return member(o, key, path, 'number', false) as number | undefined;
}

function common(d: Json, path: string): ChardevCommon {
  const logfile = str(d, 'logfile', path) ?? null;
  return { logfile, logappend: bool(d, 'logappend', path) ?? false };
}

/** @qemu qapi/sockets.json SocketAddressLegacy */
function socketAddress(a: Json, path: string): SocketAddress {
  const type = str(a, 'type', path, true)!;
  const data = member(a, 'data', path, 'object', true) as Json;
  const dp = `${path}data.`;
  switch (type) {
    case 'inet': {
      const host = str(data, 'host', dp, true)!;
      const addr: SocketAddress = { type: 'inet', host, port: str(data, 'port', dp, true)! };
      const to = num(data, 'to', dp);
      if (to !== undefined) addr.to = to;
      return addr;
    }
    case 'unix':
      return {
        type: 'unix', path: str(data, 'path', dp, true)!,
        abstract: bool(data, 'abstract', dp) ?? false, tight: bool(data, 'tight', dp) ?? true,
      };
    case 'fd':
      return { type: 'fd', str: str(data, 'str', dp, true)! };
    default:
      throw new QapiError(`Parameter '${path}type' does not accept value '${type}'`);
  }
}

function socketBackend(d: Json, path: string): ChardevSocket {
  const addr = member(d, 'addr', path, 'object', true) as Json;
  const sock: ChardevSocket = { addr: socketAddress(addr, `${path}addr.`) };
  for (const k of ['server', 'wait', 'telnet', 'tn3270', 'websocket', 'nodelay'] as const) {
    const v = bool(d, k, path);
    if (v !== undefined) sock[k] = v;
  }
  const reconnect = num(d, 'reconnect', path);
  if (reconnect !== undefined) sock.reconnect = reconnect;
  const tlsCreds = str(d, 'tls-creds', path);
  const tlsAuthz = str(d, 'tls-authz', path);
  if (tlsCreds !== undefined) sock.tlsCreds = tlsCreds;
  if (tlsAuthz !== undefined) sock.tlsAuthz = tlsAuthz;
  return sock;
}

function backendOf(type: string, d: Json, path: string): ChardevBackend {
  const c = common(d, path);
  switch (type) {
    case 'null':
      return { type: 'null', common: c };
    case 'socket':
      return { type: 'socket', common: c, sock: socketBackend(d, path) };
    case 'file':
      return {
        type: 'file', common: c, out: str(d, 'out', path, true)!, in: str(d, 'in', path) ?? null,
        append: bool(d, 'append', path) ?? false,
      };
    case 'stdio': {
      const signal = bool(d, 'signal', path);
      if (signal === undefined) return { type: 'stdio', common: c };
      return { type: 'stdio', common: c, signal };
    }
    case 'ringbuf':
    case 'memory': {
      const size = num(d, 'size', path);
      return size === undefined ? { type, common: c } : { type, common: c, size };
    }
    case 'mux':
      return { type: 'mux', common: c, chardev: str(d, 'chardev', path, true)! };
    default:
      throw new QapiError(`chardev backend '${type}' is not supported by detvm`);
  }
}

/**
 * The `backend` argument of QMP chardev-add / chardev-change as a ChardevBackend, or the input
 * visitor's error ("Parameter 'backend.data.out' is missing").
 */
export function chardevBackendFromQapi(backend: unknown): ParseResult<ChardevBackend> {
  try {
    if (!isObject(backend)) {
      throw new QapiError("Invalid parameter type for 'backend', expected: object");
    }
    const type = str(backend, 'type', 'backend.', true)!;
    const data = (member(backend, 'data', 'backend.', 'object', true) as Json);
    return { ok: true, value: backendOf(type, data, 'backend.data.') };
  } catch (e) {
    if (e instanceof QapiError) return { ok: false, error: e.message };
    throw e;
  }
}

/** @qemu chardev/char.c qmp_query_chardev_backends */
export function qmpQueryChardevBackends(): { name: string }[] {
  return CHARDEV_BACKEND_NAMES.map((name) => ({ name }));
}
