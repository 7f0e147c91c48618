// The detvm executable: QEMU-style options (bin/cli.ts) → createMachine → the live driver, or a
// virtual-time run with -clock virtual. Sub-commands: `detvm analyze FILE ...` (migration
// streams). The only code that reads argv, the environment and process signals.

import { writeFileSync } from 'node:fs';
import { createMachine, ConfigError, DETVM_VERSION, type DetvmMachine } from '../index.ts';
import { HELP_TEXT, parseCommandLine, type TraceFormat } from './cli.ts';
import { liveHost, liveStartup, runLive } from './live.ts';
import { analyzeMain } from './detvm-analyze.ts';
import { qemuSystemKilled } from '../core/system/index.ts';
import { exportCallTree, exportChromeTrace, exportJsonLines } from '../core/trace/index.ts';
import { chardevMemoryIo, memoryStdioText } from '../chardev/index.ts';

const PROG = 'detvm';

function fail(message: string, status = 1): never {
  process.stderr.write(`${PROG}: ${message}\n`);
  process.exit(status);
}

function writeTrace(vm: DetvmMachine, file: string, format: TraceFormat): void {
  const recs = vm.trace.records();
  const text = format === 'jsonl' ? exportJsonLines(recs) : format === 'tree' ? exportCallTree(recs) : exportChromeTrace(recs);
  writeFileSync(file, text);
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'analyze') {
    return analyzeMain(argv.slice(1), { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
  }
  const action = parseCommandLine(argv);
  switch (action.kind) {
    case 'version':
      process.stdout.write(`QEMU emulator version 7.2.22 (detvm ${DETVM_VERSION})\nCopyright (c) 2003-2022 Fabrice Bellard and the QEMU Project developers\n`);
      return 0;
    case 'help':
      process.stdout.write(HELP_TEXT);
      return 0;
    case 'error':
      if (action.status === 0) {
        process.stdout.write(action.message + '\n');
        return 0;
      }
      return fail(action.message, action.status);
    case 'run':
      break;
  }
  const report = (line: string): void => void process.stderr.write(line + '\n');
  if (!action.live) return runVirtual(action.config, action.traceFile, action.traceFormat, report);
  const live = liveHost();
  let vm: DetvmMachine;
  try {
    vm = createMachine({ ...action.config, host: live.host, report });
  } catch (e) {
    return fail(e instanceof ConfigError || e instanceof Error ? e.message : String(e));
  }
  const startupError = await liveStartup(vm.kernel, live.io());
  if (startupError) {
    vm.close();
    live.io().close();
    return fail(startupError);
  }
  const onSignal = (sig: NodeJS.Signals): void => {
    qemuSystemKilled(vm.kernel, sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15, 0);
    live.io().wake();
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  const run = runLive(vm.kernel, live.io());
  const status = (await run.done) ?? 0;
  vm.close();
  live.io().close();
  if (action.traceFile) writeTrace(vm, action.traceFile, action.traceFormat);
  return status;
}

/** -clock virtual: the same configuration as fast as possible in simulated time. */
function runVirtual(config: Parameters<typeof createMachine>[0], traceFile: string | null, format: TraceFormat, report: (l: string) => void): number {
  let vm: DetvmMachine;
  try {
    vm = createMachine({ ...config, clock: 'virtual', report });
  } catch (e) {
    return fail(e instanceof Error ? e.message : String(e));
  }
  const stdio = chardevMemoryIo(vm.kernel).stdio;
  let shown = 0;
  const flush = (): void => {
    const text = memoryStdioText(stdio);
    if (text.length > shown) process.stdout.write(Buffer.from(text.slice(shown), 'latin1'));
    shown = text.length;
  };
  vm.events.on('console', (t) => process.stdout.write(Buffer.from(t, 'latin1')));
  const limitNs = Number(process.env['DETVM_VIRTUAL_RUN_NS'] ?? 10_000_000_000);
  const end = vm.kernel.clocks.simNs + limitNs;
  // Run in slices of 100 ms of simulated time so output appears as the run goes.
  while (vm.exitStatus() === null && vm.kernel.clocks.simNs < end) {
    vm.runFor(Math.min(100_000_000, end - vm.kernel.clocks.simNs));
    flush();
  }
  flush();
  const status = vm.exitStatus() ?? 0;
  vm.close();
  if (traceFile) writeTrace(vm, traceFile, format);
  return status;
}

let code: number;
try {
  code = await main(process.argv.slice(2));
} catch (e) {
  fail(e instanceof Error ? e.stack ?? e.message : String(e));
}
// Exit once stdout has drained: a terminal, socket or stdin handle must not keep detvm alive.
process.stdout.write('', () => process.exit(code));
