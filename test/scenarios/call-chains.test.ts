// Golden call trees of stop and cont (issue 6): HMP typed on a TCP socket chardev and QMP
// commands travel main_loop_wait → tcp_chr_read → monitor_read → ... → vm_start /
// pause_all_vcpus, and the vCPU side acknowledges a stop in qemu_wait_io_event_common.
// Method: a virtual-mode machine with an in-memory TCP client; the trace's call tree is cut
// around the command and compared with the expected nesting.
import { describe, expect, it } from 'vitest';
import { createMachine, type DetvmMachine } from '../../index.ts';
import { memoryPeerConnect, memoryPeerSend, memoryPeerText, type MemoryPeer } from '../../chardev/index.ts';
import { exportCallTree, type TraceRecord } from '../../core/trace/index.ts';
import { charState } from '../../core/char/index.ts';

function machine(kind: 'monitor' | 'qmp'): { vm: DetvmMachine; peer: MemoryPeer } {
  const vm = createMachine({
    kernel: 'guests/bin/demo.elf', smp: 2, trace: 1,
    ...(kind === 'monitor' ? { monitors: ['tcp:127.0.0.1:4444,server=on,wait=off'] } : { qmp: ['tcp:127.0.0.1:4445,server=on,wait=off'] }),
  });
  const addr = kind === 'monitor' ? '127.0.0.1:4444' : '127.0.0.1:4445';
  const r = memoryPeerConnect(vm.kernel, addr);
  if (!r.ok) throw new Error(r.error);
  vm.runFor(50_000_000);
  return { vm, peer: r.peer };
}

/** The tree of the records from the first enter of `name` to its matching exit, inclusive. */
function subtree(recs: readonly TraceRecord[], name: string, from = 0): { tree: string; end: number } {
  const start = recs.findIndex((r, i) => i >= from && r.kind === 'enter' && r.name === name);
  if (start < 0) throw new Error(`no ${name} in the trace`);
  let depth = 0;
  for (let i = start; i < recs.length; i++) {
    const r = recs[i]!;
    if (r.kind === 'enter') depth++;
    if (r.kind === 'exit' && --depth === 0) return { tree: exportCallTree(recs.slice(start, i + 1)), end: i };
  }
  throw new Error(`${name} does not end in the trace`);
}

/** The main_loop_wait iteration that contains the first `name` after `from`. */
function iterationOf(recs: readonly TraceRecord[], name: string, from: number): string {
  const at = recs.findIndex((r, i) => i >= from && r.name === name);
  if (at < 0) throw new Error(`no ${name}`);
  let start = at;
  while (start > 0 && !(recs[start]!.kind === 'enter' && recs[start]!.name === 'main_loop_wait')) start--;
  return subtree(recs, 'main_loop_wait', start).tree;
}

/** Strip args and keep only the names in `keep`, re-indented by their nesting among kept ones. */
function names(tree: string, keep: string[]): string {
  const out: string[] = [];
  const stack: number[] = [];
  for (const line of tree.split('\n')) {
    const m = /^( *)[-*] (\S+)/.exec(line);
    if (!m) continue;
    const indent = m[1]!.length;
    while (stack.length > 0 && stack[stack.length - 1]! >= indent) stack.pop();
    if (!keep.includes(m[2]!)) continue;
    out.push('  '.repeat(stack.length) + m[2]!);
    stack.push(indent);
  }
  return out.join('\n');
}

const CONT_CHAIN = [
  'main_loop_wait', 'os_host_main_loop_wait', 'glib_pollfds_poll', 'g_main_context_dispatch', 'tcp_chr_read',
  'monitor_read', 'readline_handle_byte', 'monitor_command_cb', 'handle_hmp_command', 'hmp_cont', 'qmp_cont',
  'vm_start', 'vm_prepare_start', 'vm_state_notify', 'cpu_clock_vm_state_change', 'resume_all_vcpus', 'cpu_resume',
  'qemu_cpu_kick',
];

describe('traced call chains', () => {
  it('HMP cont over TCP: main_loop_wait down to qemu_cpu_kick', () => {
    const { vm, peer } = machine('monitor');
    memoryPeerSend(peer, 'stop\r');
    vm.runFor(10_000_000);
    const from = vm.trace.records().length;
    memoryPeerSend(peer, 'cont\r');
    vm.runFor(10_000_000);
    const tree = iterationOf(vm.trace.records(), 'hmp_cont', from);
    expect(names(tree, CONT_CHAIN)).toBe([
      'main_loop_wait',
      '  os_host_main_loop_wait',
      '    glib_pollfds_poll',
      '      g_main_context_dispatch',
      '        tcp_chr_read',
      '          monitor_read',
      '            readline_handle_byte',
      '              monitor_command_cb',
      '                handle_hmp_command',
      '                  hmp_cont',
      '                    qmp_cont',
      '                      vm_start',
      '                        vm_prepare_start',
      '                          vm_state_notify',
      '                            cpu_clock_vm_state_change',
      '                        resume_all_vcpus',
      '                          cpu_resume',
      '                            qemu_cpu_kick',
      '                          cpu_resume',
      '                            qemu_cpu_kick',
    ].join('\n'));
    expect(memoryPeerText(peer)).toContain('(qemu) ');
    expect(vm.kernel.runstate.current).toBe('running');
  });

  it('HMP stop: pause_all_vcpus, then the vCPU side acknowledges in qemu_wait_io_event_common', () => {
    const { vm, peer } = machine('monitor');
    const from = vm.trace.records().length;
    memoryPeerSend(peer, 'stop\r');
    vm.runFor(10_000_000);
    const tree = iterationOf(vm.trace.records(), 'hmp_stop', from);
    expect(names(tree, [
      'main_loop_wait', 'tcp_chr_read', 'monitor_read', 'handle_hmp_command', 'hmp_stop', 'qmp_stop', 'vm_stop',
      'do_vm_stop', 'pause_all_vcpus', 'qemu_cpu_kick', 'rr_cpu_thread_fn', 'qemu_wait_io_event_common',
      'qemu_cpu_stop', 'vm_state_notify', 'qapi_event_send', 'bdrv_drain_all', 'bdrv_flush_all',
    ])).toBe([
      'main_loop_wait',
      '  tcp_chr_read',
      '    monitor_read',
      '      handle_hmp_command',
      '        hmp_stop',
      '          qmp_stop',
      '            vm_stop',
      '              do_vm_stop',
      '                pause_all_vcpus',
      '                  qemu_cpu_kick',
      '                  qemu_cpu_kick',
      '                  rr_cpu_thread_fn',
      '                    qemu_wait_io_event_common',
      '                      qemu_cpu_stop',
      '                    qemu_wait_io_event_common',
      '                      qemu_cpu_stop',
      '                vm_state_notify',
      '                qapi_event_send',
      '                bdrv_drain_all',
      '                bdrv_flush_all',
    ].join('\n'));
    expect(vm.kernel.sys.vcpus.every((v) => v.stopped)).toBe(true);
  });

  it('QMP stop and cont go through the dispatcher to qmp_stop / qmp_cont', () => {
    const { vm, peer } = machine('qmp');
    memoryPeerSend(peer, '{"execute":"qmp_capabilities"}');
    vm.runFor(10_000_000);
    const from = vm.trace.records().length;
    memoryPeerSend(peer, '{"execute":"stop"}');
    vm.runFor(10_000_000);
    memoryPeerSend(peer, '{"execute":"cont"}');
    vm.runFor(10_000_000);
    const recs = vm.trace.records();
    const stop = iterationOf(recs, 'qmp_stop', from);
    expect(stop).toMatch(/- do_qmp_dispatch_bh\n +- qmp_stop\n +- vm_stop/);
    const cont = iterationOf(recs, 'qmp_cont', from);
    expect(cont).toMatch(/- qmp_cont\n(.*\n)*? +- vm_start\n(.*\n)*? +- resume_all_vcpus/);
    const text = memoryPeerText(peer);
    expect(text.indexOf('"event": "STOP"')).toBeLessThan(text.indexOf('"return": {}', text.indexOf('"event": "STOP"') - 1 + 1));
    expect(charState(vm.kernel).chardevs.has('compat_monitor0')).toBe(true);
  });
});
