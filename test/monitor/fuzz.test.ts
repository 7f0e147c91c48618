// Property tests (fast-check, seeded from SEED): random bytes into an HMP monitor (readline) and a
// QMP monitor (JSON streamer) never throw out of the main loop, keep the monitor's memory bounded,
// and a valid command sent afterwards (after QEMU's resynchronisation bytes) still gets the right
// answer. The seed is in the test names and in every failure message.

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { exchange, hmpOnPeer, monitorEnvCreate, qmpOnPeer, runUntilIdle } from '../support/monitor-env.ts';
import { fakePeerSend, fakePeerTake } from '../support/monitor-chardev.ts';
import { jsonMessageParserHeldBytes } from '../../monitor/json-streamer.ts';
import { READLINE_CMD_BUF_SIZE, READLINE_MAX_CMDS } from '../../monitor/readline.ts';

const SEED = Number(process.env.SEED ?? 20261126);
const RUNS = Number(process.env.FUZZ_RUNS ?? 60);

const bytes = fc.uint8Array({ minLength: 0, maxLength: 400 });
/** Bytes biased towards the interesting ones (escapes, CR/LF, TAB, quotes, braces). */
const biased = fc.array(fc.oneof(
  fc.integer({ min: 0, max: 255 }),
  fc.constantFrom(0x1b, 0x5b, 0x9b, 0x0a, 0x0d, 0x09, 0x7f, 0x22, 0x27, 0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x2c, 0x5c, 0xff),
), { maxLength: 400 }).map((a) => Uint8Array.from(a));

describe(`monitor fuzzing (SEED=${SEED})`, () => {
  it(`HMP: random bytes never throw, stay bounded, and 'info version' still answers (SEED=${SEED})`, () => {
    fc.assert(fc.property(fc.oneof(bytes, biased), (input) => {
      const env = monitorEnvCreate({ noExit: true, ringbufs: { rb: 64 } });
      const { peer, mon } = hmpOnPeer(env);
      runUntilIdle(env);
      fakePeerSend(peer, input);
      runUntilIdle(env);
      const rs = mon.rs!;
      expect(rs.cmdBuf.length).toBeLessThanOrEqual(READLINE_CMD_BUF_SIZE);
      expect(rs.history.length).toBeLessThanOrEqual(READLINE_MAX_CMDS);
      expect(mon.outbuf).toBe('');
      const quit = (): boolean => env.fm.state.events.includes('SHUTDOWN') || mon.suspendCnt > 0;
      if (quit()) return; // 'quit' typed: input stays off
      // Two Enters end any escape sequence and the pending line (which may be 'q': quit); then
      // a clean command.
      exchange(env, peer, '\r\r');
      if (quit()) return;
      const out = exchange(env, peer, 'info version\r');
      expect(out.endsWith('\r\n7.2.22detvm 0.1.0\r\n(qemu) ')).toBe(true);
    }), { seed: SEED, numRuns: RUNS });
  });

  it(`QMP: random bytes never throw, stay bounded, and a probe after 0xFF resync answers (SEED=${SEED})`, () => {
    fc.assert(fc.property(fc.oneof(bytes, biased), (input) => {
      const env = monitorEnvCreate({ noExit: true });
      const { peer, mon } = qmpOnPeer(env);
      runUntilIdle(env);
      exchange(env, peer, '{"execute": "qmp_capabilities"}');
      fakePeerSend(peer, input);
      runUntilIdle(env);
      expect(jsonMessageParserHeldBytes(mon.parser)).toBeLessThan(1 << 16);
      expect(mon.requests.length).toBe(0);
      expect(mon.outbuf).toBe('');
      fakePeerTake(peer);
      const out = exchange(env, peer, '\xff\n{"execute": "query-name", "id": "probe"}');
      expect(out.endsWith('{"return": {}, "id": "probe"}\r\n')).toBe(true);
    }), { seed: SEED, numRuns: RUNS });
  });
});
