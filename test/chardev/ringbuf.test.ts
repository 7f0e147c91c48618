// The ring buffer chardev and ringbuf_write / ringbuf_read (QMP and HMP): overwrite of the
// oldest bytes, QEMU's error texts, base64 in both directions (GLib's lenient decoder), and
// HMP's escaping of what it prints. Method: direct calls on a virtual-mode machine.

import { describe, expect, it } from 'vitest';
import {
  gBase64Encode, hmpRingbufReadFormat, qbase64Decode, qemuChardevNew, qmpRingbufRead,
  qmpRingbufWrite, ringbufRead, ringbufWrite,
} from '../../chardev/index.ts';
import { qemuChrFeWrite } from '../../core/char/index.ts';
import { bytes, testFrontendAttach, testMachine } from '../support/chardev-frontend.ts';

const common = { logfile: null, logappend: false };

describe('ringbuf', () => {
  it('keeps the newest `size` bytes of what frontends write', () => {
    const m = testMachine();
    const r = qemuChardevNew(m, 'rb', { type: 'ringbuf', common, size: 8 });
    if (!r.ok) throw new Error(r.error);
    const fe = testFrontendAttach(r.value);
    expect(fe.events).toEqual(['OPENED']);
    expect(qemuChrFeWrite(fe.be, bytes('0123456789'))).toBe(10);
    expect(qmpRingbufRead(m, 'rb', 100)).toEqual({ ok: true, value: '23456789' });
    expect(qmpRingbufRead(m, 'rb', 100)).toEqual({ ok: true, value: '' });
  });

  it('writes and reads through QMP/HMP with QEMU\'s error texts', () => {
    const m = testMachine();
    qemuChardevNew(m, 'rb', { type: 'memory', common });
    qemuChardevNew(m, 'nul', { type: 'null', common });
    expect(ringbufWrite(m, 'nope', bytes('x'))).toEqual({ ok: false, error: "Device 'nope' not found" });
    expect(ringbufWrite(m, 'nul', bytes('x'))).toEqual({ ok: false, error: 'nul is not a ringbuf device' });
    expect(ringbufRead(m, 'rb', 0)).toEqual({ ok: false, error: 'size must be greater than zero' });
    expect(qmpRingbufWrite(m, 'rb', 'aGVsbG8=', 'base64')).toEqual({ ok: true, value: undefined });
    expect(qmpRingbufWrite(m, 'rb', 'a\0b')).toEqual({ ok: true, value: undefined });
    expect(qmpRingbufRead(m, 'rb', 3)).toEqual({ ok: true, value: 'hel' });
    expect(qmpRingbufRead(m, 'rb', 10, 'base64')).toEqual({ ok: true, value: gBase64Encode(bytes('loa')) });
    expect(qmpRingbufWrite(m, 'rb', 'not base64!', 'base64')).toEqual({ ok: false, error: 'Base64 data contains invalid characters' });
  });

  it('decodes base64 like GLib and formats HMP output like hmp_ringbuf_read', () => {
    const d = qbase64Decode('aGk=\naGk');
    expect(d.ok && String.fromCharCode(...d.value)).toBe('hi');
    expect(gBase64Encode(Uint8Array.of(0xff, 0x00))).toBe('/wA=');
    expect(hmpRingbufReadFormat(Uint8Array.of(0x61, 0x5c, 0x01, 0x0a, 0x7f, 0x09, 0x00, 0x62))).toBe('a\\\\\\u0001\n\\u007F\t\n');
  });
});
