// The stdio chardev on the real process stdin/stdout (core/host/host-stdio.ts), in a child
// process with piped stdio: input reaches the frontend through the boundary, ^C with signal=on
// becomes a SIGINT request instead of input, output reaches stdout, end of input sends CLOSED.
// (Raw mode needs a terminal; without one the adapter leaves the mode alone.)

import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const child = path.join(import.meta.dirname, '..', 'support', 'chardev-stdio-child.ts');

describe('stdio chardev on the host', () => {
  it('echoes input, turns ^C into a signal request and closes at end of input', async () => {
    const p = spawn(process.execPath, ['--import', 'tsx', child], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    const code = new Promise<number | null>((resolve) => p.on('exit', (c) => resolve(c)));
    p.stdin.end(Buffer.from('hello\x03world'));
    expect(await code).toBe(0);
    expect(Buffer.concat(err).toString()).toBe('');
    const text = Buffer.concat(out).toString();
    expect(text).toContain('SIGNAL:SIGINT\n');
    expect(text.replace('SIGNAL:SIGINT\n', '')).toBe('HELLOWORLD\nEOF\n');
  }, 60_000);
});
