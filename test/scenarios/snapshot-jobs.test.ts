// QMP snapshot-save / snapshot-load / snapshot-delete as QEMU 7.2's jobs: the wire order of
// JOB_STATUS_CHANGE (created, running), STOP/RESUME from the work done in a bottom half, the
// command's return (QEMU's dispatcher answers one iohandler pass later), then waiting, pending,
// concluded (or aborting, concluded); query-jobs newest first with progress and the error of a
// failed job; job-dismiss (null) and its errors; every job dismissed at exit. The expected
// sequences are what qemu-system-riscv32 7.2.22 sent for the same commands (checked on this
// machine). Method: a raw QMP connection on a library chardev that logs every message in order.
import { describe, expect, it } from 'vitest';
import { GUEST_DEMO, diskMachine, memImages, qmpWire } from './snapshot-support.ts';

const job = (id: string, status: string): string =>
  JSON.stringify({ event: 'JOB_STATUS_CHANGE', data: { status, id } });
const STOP = '{"event":"STOP"}';
const RESUME = '{"event":"RESUME"}';
const OK = '{"return":{}}';

function setup(): { vm: ReturnType<typeof diskMachine>; q: ReturnType<typeof qmpWire>; run: (cmd: Record<string, unknown>) => string[] } {
  const vm = diskMachine(memImages(1), 1, GUEST_DEMO);
  vm.runFor(20_000_000);
  const q = qmpWire(vm);
  const run = (cmd: Record<string, unknown>): string[] => {
    q.log.length = 0;
    q.send(cmd);
    q.waitReply();
    vm.runFor(5_000_000);
    return [...q.log];
  };
  return { vm, q, run };
}

const save = (id: string, tag: string): Record<string, unknown> =>
  ({ execute: 'snapshot-save', arguments: { 'job-id': id, tag, vmstate: 'disk0', devices: ['disk0'] } });
const load = (id: string, tag: string): Record<string, unknown> =>
  ({ execute: 'snapshot-load', arguments: { 'job-id': id, tag, vmstate: 'disk0', devices: ['disk0'] } });

describe('snapshot jobs over QMP', () => {
  it('snapshot-save: created, running, return, STOP, RESUME, waiting, pending, concluded; then dismiss', () => {
    const { vm, run } = setup();
    expect(run(save('j0', 'snap1'))).toEqual([
      job('j0', 'created'), job('j0', 'running'), STOP, RESUME, OK, job('j0', 'waiting'), job('j0', 'pending'),
      job('j0', 'concluded'),
    ]);
    expect(run({ execute: 'query-jobs' })).toEqual([
      '{"return":[{"current-progress":1,"status":"concluded","total-progress":1,"type":"snapshot-save","id":"j0"}]}',
    ]);
    expect(vm.hmp('info snapshots')).toMatch(/\r\n-- {8}snap1 /);
    expect(run({ execute: 'job-dismiss', arguments: { id: 'j0' } })).toEqual([job('j0', 'null'), OK]);
    expect(run({ execute: 'query-jobs' })).toEqual(['{"return":[]}']);
    expect(run({ execute: 'job-dismiss', arguments: { id: 'j0' } }))
      .toEqual(['{"error":{"class":"GenericError","desc":"Job not found"}}']);
  });

  it('a failing job aborts and concludes; query-jobs shows its error; ids are checked', () => {
    const { run } = setup();
    run(save('j0', 'snap1'));
    expect(run(save('j1', 'snap1'))).toEqual([
      job('j1', 'created'), job('j1', 'running'), OK, job('j1', 'aborting'), job('j1', 'concluded'),
    ]);
    expect(run({ execute: 'query-jobs' })).toEqual([
      '{"return":[{"current-progress":1,"status":"concluded","total-progress":1,"type":"snapshot-save","id":"j1",'
      + '"error":"Snapshot \'snap1\' already exists in one or more devices"},'
      + '{"current-progress":1,"status":"concluded","total-progress":1,"type":"snapshot-save","id":"j0"}]}',
    ]);
    expect(run(save('j1', 'x'))).toEqual(['{"error":{"class":"GenericError","desc":"Job ID \'j1\' already in use"}}']);
    expect(run(save('1bad', 'x'))).toEqual(['{"error":{"class":"GenericError","desc":"Invalid job ID \'1bad\'"}}']);
    expect(run({ execute: 'job-dismiss', arguments: { id: 'j1' } })).toEqual([job('j1', 'null'), OK]);
  });

  it('snapshot-load stops and resumes around the load; a failed one leaves the VM in restore-vm', () => {
    const { vm, run } = setup();
    run(save('j0', 'snap1'));
    expect(run(load('j1', 'snap1'))).toEqual([
      job('j1', 'created'), job('j1', 'running'), STOP, RESUME, OK, job('j1', 'waiting'), job('j1', 'pending'),
      job('j1', 'concluded'),
    ]);
    expect(run(load('j2', 'nosuch'))).toEqual([
      job('j2', 'created'), job('j2', 'running'), STOP, OK, job('j2', 'aborting'), job('j2', 'concluded'),
    ]);
    expect(vm.hmp('info status')).toBe('VM status: paused (restore-vm)\r\n');
    expect(run({ execute: 'query-jobs' }).join('')).toContain(
      '"error":"Snapshot \'nosuch\' does not exist in one or more devices"');
  });

  it('snapshot-delete removes the snapshot without stopping the VM; arguments are checked', () => {
    const { vm, run } = setup();
    run(save('j0', 'snap1'));
    expect(run({ execute: 'snapshot-delete', arguments: { 'job-id': 'j1', tag: 'snap1', devices: ['disk0'] } })).toEqual([
      job('j1', 'created'), job('j1', 'running'), OK, job('j1', 'waiting'), job('j1', 'pending'), job('j1', 'concluded'),
    ]);
    expect(vm.hmp('info snapshots')).toBe('There is no snapshot available.\r\n');
    expect(run({ execute: 'snapshot-save', arguments: { 'job-id': 'j2', tag: 's', vmstate: 'disk0' } }))
      .toEqual(['{"error":{"class":"GenericError","desc":"Parameter \'devices\' is missing"}}']);
    expect(run({ execute: 'snapshot-save', arguments: { 'job-id': 'j3', tag: 's', vmstate: 'nosuch', devices: ['disk0'] } }))
      .toEqual([job('j3', 'created'), job('j3', 'running'), OK, job('j3', 'aborting'), job('j3', 'concluded')]);
    expect(run({ execute: 'query-jobs' }).join('')).toContain('"error":"vmstate block device \'nosuch\' does not exist"');
    expect(run({ execute: 'job-dismiss', arguments: { id: 'j1' } })).toEqual([job('j1', 'null'), OK]);
    expect(run({ execute: 'job-dismiss', arguments: { id: 'j3' } })).toEqual([job('j3', 'null'), OK]);
  });

  it('at exit every job left is dismissed, newest first', () => {
    const { vm, q, run } = setup();
    run(save('j0', 'snap1'));
    run({ execute: 'snapshot-delete', arguments: { 'job-id': 'j1', tag: 'snap1', devices: ['disk0'] } });
    q.log.length = 0;
    vm.close();
    expect(q.log).toEqual([job('j1', 'null'), job('j0', 'null')]);
  });
});
