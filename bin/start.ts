// `npm start`: the demo guest with a scratch disk, so savevm/loadvm work out of the box. Creates
// an empty 64 MiB qcow2 image in a new temporary directory, adds it to the command line as
// `-drive if=none,file=IMAGE,format=qcow2,id=scratch -device
// virtio-blk-device,drive=scratch`, runs the detvm CLI (bin/main.ts) with the rest of the
// arguments, and removes the directory when the process exits.
// Usage: tsx bin/start.ts [detvm options...]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { qcow2Create } from '../core/block/index.ts';
import { hostBlockFileProviderCreate } from '../core/host/index.ts';

/** Bytes of the scratch disk. */
const SCRATCH_BYTES = 64 * 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), 'detvm-scratch-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
const image = join(dir, 'scratch.qcow2');
const f = hostBlockFileProviderCreate().create(image);
qcow2Create(f, { size: SCRATCH_BYTES });
f.close();
process.argv.push(
  '-drive', `if=none,file=${image},format=qcow2,id=scratch`,
  '-device', 'virtio-blk-device,drive=scratch',
);
await import('./main.ts');
