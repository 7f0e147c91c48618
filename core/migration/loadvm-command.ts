// QEMU_VM_COMMAND records on the incoming side (migration/savevm.c loadvm_process_command).
// detvm has no return path, postcopy or COLO: commands are validated with QEMU's checks and
// messages, then those QEMU would act on fail with a detvm message instead of half-working.
// A savevm stream never contains commands; a QEMU 7.2 precopy migration without the
// return-path capability neither.

import { EINVAL, ERANGE } from './errors.ts';
import { type QEMUFileReader, qemuGetBe16, qemuGetBe32 } from './qemu-file-reader.ts';

/** @qemu PostcopyState (the incoming side's postcopy progress) */
export type PostcopyState = 'none' | 'advise' | 'discard' | 'listening' | 'running';

const POSTCOPY_STATE_NUMBER: Readonly<Record<PostcopyState, number>> = {
  none: 0, advise: 1, discard: 2, listening: 3, running: 4,
};

/** @qemu enum qemu_vm_cmd and mig_cmd_args (7.2): name and fixed length (-1: variable) */
const MIG_CMD_ARGS: ReadonlyArray<{ name: string; len: number }> = [
  { name: 'INVALID', len: -1 },
  { name: 'OPEN_RETURN_PATH', len: 0 },
  { name: 'PING', len: 4 },
  { name: 'POSTCOPY_ADVISE', len: -1 },
  { name: 'POSTCOPY_LISTEN', len: 0 },
  { name: 'POSTCOPY_RUN', len: 0 },
  { name: 'POSTCOPY_RAM_DISCARD', len: -1 },
  { name: 'PACKAGED', len: 4 },
  { name: 'ENABLE_COLO', len: 0 },
  { name: 'POSTCOPY_RESUME', len: 0 },
  { name: 'RECV_BITMAP', len: -1 },
];
const MIG_CMD_MAX = MIG_CMD_ARGS.length;

function unsupported(name: string, report: (m: string) => void): number {
  report(`MIG_CMD ${name}: detvm does not support postcopy, COLO or a return path`);
  return -EINVAL;
}

/**
 * Process one command after its 0x08 byte. Returns 0 to go on or a negative errno.
 * @qemu migration/savevm.c loadvm_process_command
 */
export function loadvmProcessCommand(
  f: QEMUFileReader, ls: { postcopy: PostcopyState }, report: (m: string) => void,
): number {
  const cmd = qemuGetBe16(f);
  const len = qemuGetBe16(f);
  if (f.error) return f.error;
  if (cmd >= MIG_CMD_MAX || cmd === 0) {
    report(`MIG_CMD 0x${cmd.toString(16)} unknown (len 0x${len.toString(16)})`);
    return -EINVAL;
  }
  const args = MIG_CMD_ARGS[cmd]!;
  if (args.len !== -1 && args.len !== len) {
    report(`${args.name} received with bad length - expecting ${args.len}, got ${len}`);
    return -ERANGE;
  }
  switch (args.name) {
    case 'OPEN_RETURN_PATH':
      // qemu_file_get_return_path fails: this loader has no channel back to the source.
      report('CMD_OPEN_RETURN_PATH failed');
      return -1;
    case 'PING': {
      const value = qemuGetBe32(f);
      report(`CMD_PING (0x${value.toString(16)}) received with no return path`);
      return -1;
    }
    case 'POSTCOPY_ADVISE':
      return postcopyAdvise(ls, len, report);
    case 'POSTCOPY_LISTEN': {
      const ps = ls.postcopy;
      if (ps !== 'advise' && ps !== 'discard') {
        report(`CMD_POSTCOPY_LISTEN in wrong postcopy state (${POSTCOPY_STATE_NUMBER[ps]})`);
        return -1;
      }
      return unsupported(args.name, report);
    }
    case 'POSTCOPY_RUN': {
      if (ls.postcopy !== 'listening') {
        report(`CMD_POSTCOPY_RUN in wrong postcopy state (${POSTCOPY_STATE_NUMBER[ls.postcopy]})`);
        return -1;
      }
      return unsupported(args.name, report);
    }
    case 'POSTCOPY_RAM_DISCARD': {
      const ps = ls.postcopy;
      if (ps !== 'advise' && ps !== 'discard') {
        report(`CMD_POSTCOPY_RAM_DISCARD in wrong postcopy state (${POSTCOPY_STATE_NUMBER[ps]})`);
        return -1;
      }
      return unsupported(args.name, report);
    }
    case 'POSTCOPY_RESUME':
      // Not in postcopy recovery: QEMU reports it and carries on.
      report('loadvm_postcopy_handle_resume: illegal resume received');
      return 0;
    default:
      return unsupported(args.name, report);
  }
}

/** @qemu loadvm_postcopy_handle_advise (the postcopy-ram capability is always off in detvm) */
function postcopyAdvise(
  ls: { postcopy: PostcopyState }, len: number, report: (m: string) => void,
): number {
  const ps = ls.postcopy;
  ls.postcopy = 'advise';
  if (ps !== 'none') {
    report(`CMD_POSTCOPY_ADVISE in wrong postcopy state (${POSTCOPY_STATE_NUMBER[ps]})`);
    return -1;
  }
  if (len === 0) return 0;
  if (len === 16) {
    report('RAM postcopy is disabled but have 16 byte advise');
    return -EINVAL;
  }
  report(`CMD_POSTCOPY_ADVISE invalid length (${len})`);
  return -EINVAL;
}
