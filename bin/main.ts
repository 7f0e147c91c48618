// The detvm executable: QEMU-style options (bin/cli.ts) → createMachine → the live driver, or a
// virtual-time run with -clock virtual. Sub-commands: `detvm analyze FILE ...` (migration
// streams), `detvm replay FILE ...` (record/replay logs). The only code that reads argv, the
// environment and process signals.

import { writeFileSync } from 'node:fs';
import { createMachine, ConfigError, DETVM_VERSION, type DetvmMachine } from '../index.ts';
import { HELP_TEXT, parseCommandLine, type TraceFormat } from './cli.ts';
import { liveHost, liveStartup, runLive } from './live.ts';
import { analyzeMain } from './detvm-analyze.ts';
import { replayMain, replayRunConfig } from './replay.ts';
import { machineProgressCreate, progressGuardStream, progressLineCreate } from './progress.ts';
import { hostBlockFileProviderCreate, hostExecCreate } from '../core/host/index.ts';
import { hostInputArrived, type LoopMachine } from '../core/loop/index.ts';
import { exportCallTree, exportChromeTrace, exportJsonLines } from '../core/trace/index.ts';
import { chardevMemoryIo, memoryStdioText } from '../chardev/index.ts';

const PROG = 'detvm';

function fail(message: string, status = 1): never {
  process.stderr.write(`${PROG}: ${message}\n`);
  process.exit(status);
}

/** Replay output: guest bytes come as latin1 strings (one char per byte); other text as UTF-8. */
function writeOut(s: string): void {
  process.stdout.write(/[^\x00-\xff]/.test(s) ? s : Buffer.from(s, 'latin1'));
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
  // Long operations show their progress on stderr when it is a terminal (bin/progress.ts).
  const line = progressLineCreate(process.stderr);
  if (process.stderr.isTTY) progressGuardStream(line, process.stdout);
  // A replay runs in chunks only to report progress, so only when someone can see it.
  const replayProgress = process.stderr.isTTY
    ? (done: number, total: number): void => line.show('replay', done, total, 'iterations')
    : undefined;
  if (argv[0] === 'replay') {
    const status = await replayMain(argv.slice(1), {
      out: writeOut, err: (s) => void (line.clear(), process.stderr.write(s)),
      input: process.stdin, prompt: process.stdin.isTTY === true, ...(replayProgress ? { progress: replayProgress } : {}),
    });
    line.clear();
    return status;
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
  const report = (text: string): void => {
    line.clear();
    process.stderr.write(text.endsWith('\n') ? text : text + '\n');
  };
  // -icount rr=replay: the log is the outside world; replay it to the end in virtual time.
  if (action.config.replay) {
    return replayRunConfig(action.config, {
      out: writeOut, err: (s) => void (line.clear(), process.stderr.write(s)),
      input: null, prompt: false, ...(replayProgress ? { progress: replayProgress } : {}),
    }, (vm) => {
      line.clear();
      if (action.traceFile) writeTrace(vm, action.traceFile, action.traceFormat);
    });
  }
  if (!action.live) return runVirtual(action.config, action.traceFile, action.traceFormat, report);
  const live = liveHost();
  let vm: DetvmMachine;
  const progress = machineProgressCreate(() => vm ?? null, line);
  try {
    // -migrate-exec on: exec: migration URIs run commands (their pipes enter through the boundary).
    const exec = action.migrateExec
      ? { exec: (m: LoopMachine) => hostExecCreate((i) => (hostInputArrived(m.fdt, i), live.io().wake())) } : {};
    vm = createMachine({ ...action.config, host: { ...live.host, ...exec }, report, blockFiles: progress.blockFiles(hostBlockFileProviderCreate()) });
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
    // vm.signal: qemu_system_killed, logged first when recording.
    vm.signal(sig === 'SIGINT' ? 2 : sig === 'SIGHUP' ? 1 : 15, 0);
    live.io().wake();
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  const run = runLive(vm.kernel, live.io(), () => progress.poll());
  const status = (await run.done) ?? 0;
  line.clear();
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
