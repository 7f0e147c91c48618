// Child process for test/scenarios/snapshot-crash.test.ts: boots guests/bin/disk.elf on a
// virtio-blk disk backed by IMAGE (a host file), lets the guest write to it, then runs
// `savevm TAG` and exits. With KILL_AT > 0 the process SIGKILLs itself just before the KILL_AT-th
// write or truncate reaches the image (a real kill, between two system calls, at a seeded
// point); with KILL_AT = 0 it prints how many writes happened before the savevm and in all.
// Usage: node --import tsx snapshot-crash-child.ts IMAGE TAG KILL_AT RUN_NS

import { createMachine } from '../../index.ts';
import { hostBlockFileProviderCreate } from '../../core/host/index.ts';
import type { BlockFile, BlockFileProvider } from '../../core/block/index.ts';

const [image, tag, killAtText, runNsText] = process.argv.slice(2);
if (!image || !tag || killAtText === undefined || runNsText === undefined) {
  process.stderr.write('usage: snapshot-crash-child.ts IMAGE TAG KILL_AT RUN_NS\n');
  process.exit(2);
}
const killAt = Number(killAtText);
let writes = 0;

function counted(f: BlockFile): BlockFile {
  const step = (): void => {
    writes++;
    if (writes === killAt) process.kill(process.pid, 'SIGKILL');
  };
  return {
    name: f.name,
    readOnly: f.readOnly,
    size: () => f.size(),
    pread: (o, b) => f.pread(o, b),
    pwrite: (o, d) => (step(), f.pwrite(o, d)),
    flush: () => f.flush(),
    truncate: (n) => (step(), f.truncate(n)),
    close: () => f.close(),
  };
}

const host = hostBlockFileProviderCreate();
const files: BlockFileProvider = {
  kind: 'host',
  open: (path, readOnly) => counted(host.open(path, readOnly)),
  create: (path) => counted(host.create(path)),
};
const vm = createMachine({
  kernel: new URL('../../guests/bin/disk.elf', import.meta.url).pathname,
  blockFiles: files,
  drives: [`if=none,file=${image},format=qcow2,id=d0,node-name=disk0`],
  devices: ['virtio-blk-device,drive=d0'],
});
vm.runFor(Number(runNsText));
const before = writes;
const out = vm.hmp(`savevm ${tag}`);
vm.close();
process.stdout.write(`savevm ${JSON.stringify(out)} writes-before=${before} writes=${writes} exit=${vm.exitStatus()} console=${JSON.stringify(vm.console.text().slice(0, 300))}\n`);
