// Run states (softmmu/runstate.c): the 16 RunState values of QEMU 7.2, its transition table,
// runstate_set, and VM change-state handlers with priorities. Invariants: a transition outside
// the table is an assertion naming both states (QEMU aborts); setting the current state again is
// a no-op; handlers run in ascending priority on start and in reverse on stop.

import { assert, notifierListNotify } from '../util/index.ts';
import { type LoopMachine, type QapiEvent } from '../loop/index.ts';
import { TRACE_CONTROL, traceEnter, traceExit, traceEvent } from '../trace/index.ts';

/** RunState, in QEMU's enum order (qapi/run-state.json). */
export const RUN_STATES = [
  'debug', 'inmigrate', 'internal-error', 'io-error', 'paused', 'postmigrate', 'prelaunch',
  'finish-migrate', 'restore-vm', 'running', 'save-vm', 'shutdown', 'suspended', 'watchdog',
  'guest-panicked', 'colo',
] as const;
export type RunState = (typeof RUN_STATES)[number];

/** ShutdownCause, in QEMU's enum order. */
export const SHUTDOWN_CAUSES = [
  'none', 'host-error', 'host-qmp-quit', 'host-qmp-system-reset', 'host-signal', 'host-ui',
  'guest-shutdown', 'guest-reset', 'guest-panic', 'subsystem-reset', 'snapshot-load',
] as const;
export type ShutdownCause = (typeof SHUTDOWN_CAUSES)[number];

/** QEMU 7.2's runstate_transitions_def: from → allowed targets. */
const TRANSITIONS: Record<RunState, readonly RunState[]> = {
  'prelaunch': ['inmigrate', 'running', 'finish-migrate'],
  'debug': ['running', 'finish-migrate', 'prelaunch', 'suspended'],
  'inmigrate': [
    'internal-error', 'io-error', 'paused', 'running', 'shutdown', 'suspended', 'watchdog',
    'guest-panicked', 'finish-migrate', 'prelaunch', 'postmigrate', 'colo',
  ],
  'internal-error': ['paused', 'finish-migrate', 'prelaunch'],
  'io-error': ['running', 'finish-migrate', 'prelaunch'],
  'paused': ['running', 'finish-migrate', 'postmigrate', 'prelaunch', 'colo'],
  'postmigrate': ['running', 'finish-migrate', 'prelaunch'],
  'finish-migrate': ['running', 'paused', 'postmigrate', 'prelaunch', 'colo'],
  'restore-vm': ['running', 'prelaunch'],
  'colo': ['running', 'prelaunch', 'shutdown'],
  'running': [
    'debug', 'internal-error', 'io-error', 'paused', 'finish-migrate', 'restore-vm', 'save-vm',
    'shutdown', 'watchdog', 'guest-panicked', 'colo', 'suspended',
  ],
  'save-vm': ['running'],
  'shutdown': ['paused', 'finish-migrate', 'prelaunch', 'colo'],
  'suspended': ['running', 'finish-migrate', 'prelaunch', 'colo'],
  'watchdog': ['running', 'finish-migrate', 'prelaunch', 'colo'],
  'guest-panicked': ['running', 'finish-migrate', 'prelaunch'],
};

/** Whether `from → to` is in QEMU 7.2's table (a state to itself is not, but is a no-op). */
export function runstateTransitionAllowed(from: RunState, to: RunState): boolean {
  return TRANSITIONS[from].includes(to);
}

export type VmChangeStateCb = (running: boolean, state: RunState) => void;

interface VmChangeStateEntry {
  name: string;
  cb: VmChangeStateCb;
  priority: number;
}

/** Run-state part of the machine. */
export interface RunstateState {
  current: RunState;
  handlers: VmChangeStateEntry[];
}

export interface RunstateMachine extends LoopMachine {
  runstate: RunstateState;
}

export function runstateCreate(): RunstateState {
  return { current: 'prelaunch', handlers: [] };
}

/** @qemu runstate_get */
export function runstateGet(m: RunstateMachine): RunState {
  return m.runstate.current;
}

/** @qemu runstate_check */
export function runstateCheck(m: RunstateMachine, state: RunState): boolean {
  return m.runstate.current === state;
}

/** @qemu runstate_is_running */
export function runstateIsRunning(m: RunstateMachine): boolean {
  return m.runstate.current === 'running';
}

/**
 * internal-error or shutdown (7.2's softmmu/runstate.c; guest-panicked is not included there).
 * @qemu runstate_needs_reset
 */
export function runstateNeedsReset(m: RunstateMachine): boolean {
  const s = m.runstate.current;
  return s === 'internal-error' || s === 'shutdown';
}

/**
 * Change the run state. Setting the current state is a no-op; a transition outside QEMU 7.2's
 * table is a programmer error (QEMU prints "invalid runstate transition" and aborts).
 * @qemu softmmu/runstate.c runstate_set
 */
export function runstateSet(m: RunstateMachine, newState: RunState): void {
  const old = m.runstate.current;
  if (old === newState) return;
  if (!runstateTransitionAllowed(old, newState)) {
    assert(false, `invalid runstate transition: '${old}' -> '${newState}'`);
  }
  m.runstate.current = newState;
  traceEvent(m, TRACE_CONTROL, 'runstate_set', { from: old, to: newState });
}

/**
 * Register a VM change-state handler; it is inserted before the first handler with a strictly
 * greater priority. Returns a function that removes it.
 * @qemu qemu_add_vm_change_state_handler_prio
 */
export function qemuAddVmChangeStateHandlerPrio(m: RunstateMachine, name: string, cb: VmChangeStateCb, priority = 0): () => void {
  const list = m.runstate.handlers;
  const entry: VmChangeStateEntry = { name, cb, priority };
  let i = 0;
  while (i < list.length && list[i]!.priority <= priority) i++;
  list.splice(i, 0, entry);
  return () => {
    const j = list.indexOf(entry);
    if (j >= 0) list.splice(j, 1);
  };
}

/** Call the handlers: ascending priority when starting, reverse when stopping. @qemu vm_state_notify */
export function vmStateNotify(m: RunstateMachine, running: boolean, state: RunState): void {
  const opened = traceEnter(m, TRACE_CONTROL, 'vm_state_notify', { running, state });
  const list = [...m.runstate.handlers];
  if (!running) list.reverse();
  for (const h of list) {
    const o = traceEnter(m, TRACE_CONTROL, h.name);
    h.cb(running, state);
    traceExit(m, o, h.name);
  }
  traceExit(m, opened, 'vm_state_notify');
}

/** Raise a QAPI event (STOP, RESUME, SHUTDOWN...). @qemu qapi_event_send_* */
export function qapiEventSend(m: LoopMachine, event: string, data?: Record<string, unknown>): void {
  traceEvent(m, TRACE_CONTROL, 'qapi_event_send', { event });
  const ev: QapiEvent = data === undefined ? { event } : { event, data };
  notifierListNotify(m.qapiEvents, ev);
}
