// Child process for test/chardev/stdio-host.test.ts: a live machine whose stdio chardev (the
// real process stdin/stdout, signal=on) has a frontend that echoes input upper-cased, reports
// tty signals, and exits 0 at end of input. Run with `node --import tsx`.

import { qemuChardevNew, qemuChrCleanup } from '../../chardev/index.ts';
import { charState, qemuChrFePrintf, qemuChrFeWrite } from '../../core/char/index.ts';
import { testFrontendAttach } from './chardev-frontend.ts';
import { liveMachineCreate, liveRunUntil } from './chardev-live.ts';

const lm = liveMachineCreate();
const r = qemuChardevNew(lm.m, 'stdio0', { type: 'stdio', common: { logfile: null, logappend: false }, signal: true });
if (!r.ok) {
  process.stderr.write(`${r.error}\n`);
  process.exit(2);
}
const fe = testFrontendAttach(r.value);
charState(lm.m).hooks.stdioSignal = (sig) => qemuChrFePrintf(fe.be, `SIGNAL:${sig}\n`);
let echoed = 0;
await liveRunUntil(lm, () => {
  if (fe.received.length > echoed) {
    const text = String.fromCharCode(...fe.received.slice(echoed)).toUpperCase();
    echoed = fe.received.length;
    qemuChrFeWrite(fe.be, new TextEncoder().encode(text));
  }
  return fe.events.includes('CLOSED');
}, 'end of input');
qemuChrFePrintf(fe.be, '\nEOF\n');
qemuChrCleanup(lm.m);
lm.io.close();
