// `npm start` under a real pseudo-terminal (tmux), as a newcomer uses it: the demo guest prints,
// Ctrl-A c shows the monitor prompt, `stop` stops the output, `info status` says paused, `cont`
// resumes, Ctrl-A x exits with status 0. Skipped when tmux is not installed. A real terminal
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
  it('console, monitor, stop/cont, quit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'detvm-start-'));
    const session = `detvm-test-${process.pid}`;
    const statusFile = join(dir, 'status');
    const tmux = (...args: string[]): string => execFileSync('tmux', args, { encoding: 'utf8' });
    const pane = (): string => tmux('capture-pane', '-p', '-t', session, '-S', '-200');
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
      tmux('send-keys', '-t', session, 'C-a', 'c');
      await waitFor('ticks after cont', (s) => ticks(s) > before);
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
