import { readFileSync } from 'node:fs';
import { virtWithSerial, runToExit } from '../test/support/virt.ts';
const f = process.argv[2] ?? 'busyloop';
const { m, serial } = virtWithSerial(readFileSync(`guests/bin/${f}.elf`));
const t0 = process.hrtime.bigint();
const st = runToExit(m, 100e9);
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
console.log(f, 'exit', st, 'icount', m.clocks.icount, 'ms', ms.toFixed(0), 'MIPS', (m.clocks.icount / ms / 1000).toFixed(1), JSON.stringify(serial()));
