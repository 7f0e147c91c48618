// The live driver sends what chardevs wrote before the vCPU turn of the same iteration (QEMU's
// main loop thread writes while the vCPU threads run on). A busy guest's turn is a 500,000-
// instruction slice, about half a millisecond, that would otherwise hold every reply back.
// Method: a live machine running `j .` with a QMP socket and a real client on 127.0.0.1; log
// the chardev's writes of replies, the writes that reach the real socket, and every vCPU turn
// with its instruction count; no full turn may come between a reply and its socket write.
import { afterEach, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { createMachine, type DetvmMachine } from '../../index.ts';
import { liveHost, liveStartup, runLive } from '../../bin/live.ts';
import { charState } from '../../core/char/index.ts';

const SPIN = { name: 'spin.bin', bytes: new Uint8Array([0x6f, 0x00, 0x00, 0x00]) }; // j .

let cleanup: (() => Promise<void>) | null = null;
afterEach(async () => {
  await cleanup?.();
  cleanup = null;
});

describe('live driver: held chardev output', () => {
  it('leaves before the vCPU turn of the iteration that wrote it', async () => {
    const live = liveHost();
    const vm: DetvmMachine = createMachine({
      kernel: SPIN, memory: '16M', serial: null, clock: 'live', host: live.host,
      qmp: ['tcp:127.0.0.1:0,server=on,wait=off'],
    });
    const m = vm.kernel;
    const err = await liveStartup(m, live.io());
    expect(err).toBeNull();
    const log: string[] = [];
    const chr = charState(m).chardevs.get('compat_monitor0')!;
    const write = chr.driver.write;
    chr.driver = {
      ...chr.driver,
      write: (c, buf) => {
        if (Buffer.from(buf).includes('"return"')) log.push('reply');
        return write(c, buf);
      },
    };
    const slice = m.loop.hooks.vcpuSlice;
    m.loop.hooks.vcpuSlice = (lm) => {
      const before = m.clocks.icount;
      slice(lm);
      log.push(`vcpu ${m.clocks.icount - before}`);
    };
    const sockWrite = net.Socket.prototype.write;
    const port = Number(/:(\d+),server=on/.exec(chr.filename)![1]);
    // Writes of detvm's side of the connection (its local port is the listener's).
    net.Socket.prototype.write = function (this: net.Socket, ...args: Parameters<net.Socket['write']>) {
      if (this.localPort === port && Buffer.from(args[0] as Uint8Array).includes('"return"')) log.push('socket');
      return sockWrite.apply(this, args);
    } as net.Socket['write'];
    const run = runLive(m, live.io());
    const client = net.connect({ host: '127.0.0.1', port });
    cleanup = async () => {
      net.Socket.prototype.write = sockWrite;
      client.destroy();
      run.stop();
      await run.done;
      vm.close();
      live.io().close();
    };
    let text = '';
    let waiter: (() => void) | null = null;
    client.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      live.io().wake();
      waiter?.();
    });
    const until = (re: RegExp): Promise<void> => new Promise((resolve) => {
      waiter = () => {
        if (re.test(text)) resolve();
      };
      waiter();
    });
    await until(/"QMP"/);
    client.write('{"execute":"qmp_capabilities"}\n');
    await until(/"return"/);
    for (let i = 0; i < 5; i++) {
      text = '';
      log.length = 0;
      client.write('{"execute":"query-status"}\n');
      await until(/"status": "running"/);
      const from = log.indexOf('reply');
      const to = log.indexOf('socket', from);
      expect(from).toBeGreaterThanOrEqual(0);
      expect(to).toBeGreaterThan(from);
      // Short turns (a chardev with input left, a BH scheduled) may come between; no full one.
      const turns = log.slice(from, to).filter((e) => e.startsWith('vcpu')).map((e) => Number(e.slice(5)));
      expect(Math.max(0, ...turns)).toBeLessThanOrEqual(10_000);
      // The guest runs full turns again once the reply is out, so without the flush before the
      // turn one would come between: the check above can fail.
      for (let i = 0; i < 10_000 && !log.slice(to).includes('vcpu 500000'); i++) await new Promise((r) => setImmediate(r));
      expect(log.slice(to)).toContain('vcpu 500000');
    }
  });
});
