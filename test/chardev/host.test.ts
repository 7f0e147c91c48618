// The host adapters' pure parts and the live clock: the tty ISIG filter, strerror texts, the
// live HostClockSource (monotonic, wall clock near Date, safe integers), and the socket error
// texts of the real network (bind conflicts on a unix path). Method: direct calls.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hostClockSourceCreate, strerror, ttyIsigFilter } from '../../core/host/index.ts';
import { binary } from '../support/chardev-frontend.ts';
import { liveMachineCreate } from '../support/chardev-live.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'detvm-host-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('host adapters', () => {
  it('filters ^C and ^\\ into signals, keeping everything else in order', () => {
    const sigs: string[] = [];
    expect(String.fromCharCode(...ttyIsigFilter(binary('a\x03b\x1cc'), (s) => sigs.push(s)))).toBe('abc');
    expect(sigs).toEqual(['SIGINT', 'SIGQUIT']);
    const plain = binary('plain');
    expect(ttyIsigFilter(plain, () => {})).toBe(plain);
  });

  it('maps errno codes to glibc strerror texts', () => {
    expect(strerror('EADDRINUSE')).toBe('Address already in use');
    expect(strerror('ECONNREFUSED')).toBe('Connection refused');
    expect(strerror('EWHATEVER')).toBe('EWHATEVER');
  });

  it('reads monotonic and wall-clock time as safe integer nanoseconds', () => {
    const c = hostClockSourceCreate();
    const a = c.monotonicNs();
    const b = c.monotonicNs();
    expect(Number.isSafeInteger(a) && Number.isSafeInteger(b)).toBe(true);
    expect(b).toBeGreaterThanOrEqual(a);
    const wall = c.baseSec * 1e9 + c.realtimeNs();
    expect(Math.abs(wall / 1e6 - Date.now())).toBeLessThan(5_000);
    expect(Number.isSafeInteger(c.realtimeNs())).toBe(true);
  });

  it('settles a listener on a unix path with the bound address', async () => {
    const lm = liveMachineCreate();
    const p = path.join(tmp, 'a.sock');
    const l = lm.io.net.listen({ type: 'unix', path: p, abstract: false, tight: true }, 1, 'l');
    await new Promise<void>((resolve) => {
      l.onSettled = () => resolve();
    });
    expect(l.status).toBe('listening');
    expect(fs.existsSync(p)).toBe(true);
    l.close();
    lm.close();
  });
});
