// `npm start` under a real pseudo-terminal (tmux), as a newcomer uses it: the demo guest prints,
// Ctrl-A c shows the monitor prompt, `stop` stops the output, `info status` says paused, `cont`
// resumes, `savevm s1` saves to the scratch qcow2 disk npm start creates, `loadvm s1` takes the
// guest back (its tick count restarts from the saved one), Ctrl-A x exits with status 0. Skipped
// only when tmux is not installed (with a warning). A real terminal
// program cannot be stepped in virtual time, so waits poll the pane (tmux capture-pane) until
// the expected text appears, with a generous deadline as the failure guard; no fixed sleeps.
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const haveTmux = spawnSync('tmux', ['-V']).status === 0;
if (!haveTmux) console.warn('npm-start: tmux is not installed; skipping');

const root = join(import.meta.dirname, '..', '..');

describe.skipIf(!haveTmux)('npm start in a terminal', () => {
  it('console, monitor, stop/cont, savevm/loadvm, quit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'detvm-start-'));
    const session = `detvm-test-${process.pid}`;
    const statusFile = join(dir, 'status');
    const tmux = (...args: string[]): string => execFileSync('tmux', args, { encoding: 'utf8' });
    const pane = (): string => tmux('capture-pane', '-p', '-t', session, '-S', '-2000');
    const waitFor = async (what: string, pred: (s: string) => boolean, ms = 20_000): Promise<string> => {
      const deadline = performance.now() + ms;
      for (;;) {
        const s = pane();
        if (pred(s)) return s;
        if (performance.now() > deadline) throw new Error(`npm start: ${what} did not appear; screen:\n${s}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      tmux('new-session', '-d', '-s', session, '-x', '120', '-y', '50', '-c', root,
        `npm start; echo $? > ${statusFile}; sleep 30`);
      await waitFor('the first tick', (s) => /tick 2 hart [01]/.test(s));
      tmux('send-keys', '-t', session, 'C-a', 'c');
      await waitFor('the monitor prompt', (s) => s.includes('(qemu) '));
      tmux('send-keys', '-t', session, 'stop', 'Enter');
      tmux('send-keys', '-t', session, 'info status', 'Enter');
      const paused = await waitFor('VM status: paused', (s) => s.includes('VM status: paused'));
      const ticks = (s: string): number => (s.match(/tick \d+ hart/g) ?? []).length;
      const before = ticks(paused);
      // A second command round trip: while stopped, no tick may appear in between.
      tmux('send-keys', '-t', session, 'info status', 'Enter');
      const again = await waitFor('a second status', (s) => (s.match(/VM status: paused/g) ?? []).length >= 2);
      expect(ticks(again)).toBe(before);
      tmux('send-keys', '-t', session, 'cont', 'Enter');
      await waitFor('ticks after cont', (s) => ticks(s) > before);
      // savevm s1 on the scratch disk, then loadvm s1: the guest is back at the saved tick.
      const tickNumbers = (s: string): number[] => [...s.matchAll(/tick (\d+) hart 0/g)].map((x) => Number(x[1]));
      tmux('send-keys', '-t', session, 'savevm s1', 'Enter');
      tmux('send-keys', '-t', session, 'info snapshots', 'Enter');
      const listed = await waitFor('s1 in info snapshots', (s) => /^\s*--\s+s1\s+/m.test(s));
      const savedAt = Math.max(...tickNumbers(listed));
      await waitFor('ticks after savevm', (s) => Math.max(...tickNumbers(s)) >= savedAt + 5);
      tmux('send-keys', '-t', session, 'loadvm s1', 'Enter');
      await waitFor('the guest back at the saved tick', (s) => {
        const after = s.slice(s.lastIndexOf('loadvm s1'));
        const n = tickNumbers(after);
        return n.length > 0 && n[0]! <= savedAt + 2;
      });
      tmux('send-keys', '-t', session, 'info status', 'Enter');
      await waitFor('running after loadvm', (s) => s.slice(s.lastIndexOf('loadvm s1')).includes('VM status: running'));
      tmux('send-keys', '-t', session, 'C-a', 'c');
      tmux('send-keys', '-t', session, 'C-a', 'x');
      await waitFor('the exit', (s) => s.includes('QEMU: Terminated'));
      const deadline = performance.now() + 10_000;
      let status = '';
      while (performance.now() < deadline) {
        try {
          status = readFileSync(statusFile, 'utf8').trim();
          if (status) break;
        } catch {
          // not written yet
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe('0');
    } finally {
      spawnSync('tmux', ['kill-session', '-t', session]);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
