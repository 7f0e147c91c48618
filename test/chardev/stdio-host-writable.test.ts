// The stdio adapter's output descriptor (core/host/host-stdio.ts) when stdout is a file: Node
// writes a file synchronously and never emits 'drain', so a write larger than the adapter's
// Node-side bound must not leave the descriptor unwritable (it would stay so forever).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = path.join(import.meta.dirname, '..', '..');
const url = (p: string): string => pathToFileURL(path.join(root, p)).href;

const childSource = `
import { loopMachineCreate, vfdClose } from ${JSON.stringify(url('core/loop/index.ts'))};
import { hostStdioProviderCreate } from ${JSON.stringify(url('core/host/index.ts'))};
const m = loopMachineCreate();
const p = hostStdioProviderCreate(m, () => {}, { writeHighBytes: 64 * 1024 });
const r = p.open({ signal: false, onSignal: () => {} });
if (!r.ok) throw new Error(r.error);
const out = r.ends.out;
const big = new Uint8Array(200 * 1024).fill(0x41);
const n = out.write(big);
process.stderr.write(JSON.stringify({ n, writable: out.writable }) + '\\n');
r.ends.close();
vfdClose(m.fdt, out);
process.stdin.destroy();
`;

describe('stdio output on the host', () => {
  it('stays writable after a write larger than its bound when stdout is a file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'detvm-stdio-'));
    try {
      const file = path.join(dir, 'out.bin');
      const r = spawnSync('/bin/sh', ['-c', `"${process.execPath}" --import tsx --input-type=module -e "$CHILD" > "${file}"`], {
        cwd: root, env: { ...process.env, CHILD: childSource }, encoding: 'utf8', timeout: 60_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const line = r.stderr.trim().split('\n').pop()!;
      expect(JSON.parse(line)).toEqual({ n: 200 * 1024, writable: true });
      expect(readFileSync(file).length).toBe(200 * 1024);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
