// readline byte sequences -> echo bytes, checked against readline_update's rules and the
// conformance observations (full redraw per byte, cursor moves, history, completion layout).

import { describe, expect, it } from 'vitest';
import { type ReadLineState, readlineAddCompletion, readlineHandleByte, readlineInit, readlineSetCompletionIndex,
  readlineShowPrompt, readlineStart, READLINE_MAX_CMDS } from '../../monitor/readline.ts';

function rl(completions: string[] = []): { rs: ReadLineState; out: string[]; lines: string[]; type: (s: string) => string } {
  const out: string[] = [];
  const lines: string[] = [];
  const rs = readlineInit({
    print: (t) => void out.push(t),
    flush: () => {},
    completionFinder: (r, line) => {
      const word = line.split(' ').at(-1) ?? '';
      readlineSetCompletionIndex(r, word.length);
      for (const c of completions) if (c.startsWith(word)) readlineAddCompletion(r, c);
    },
    lineEntered: (l) => void lines.push(l),
  });
  readlineStart(rs, '(qemu) ', false);
  const type = (s: string): string => {
    out.length = 0;
    for (let i = 0; i < s.length; i++) readlineHandleByte(rs, s.charCodeAt(i));
    return out.join('');
  };
  return { rs, out, lines, type };
}

const L = '\x1b[D';
const R = '\x1b[C';
const K = '\x1b[K';

describe('readline echo', () => {
  it('redraws the whole line per byte', () => {
    const { type } = rl();
    expect(type('stop')).toBe(`s${K}${L}st${K}${L}${L}sto${K}${L}${L}${L}stop${K}`);
  });

  it('Enter prints \\r?\\n only as \\n (the monitor adds \\r) and submits; CR LF submits twice', () => {
    const { type, lines } = rl();
    expect(type('ab\r\n')).toBe(`a${K}${L}ab${K}\n\n`);
    expect(lines).toEqual(['ab', '']);
  });

  it('moves the cursor with arrows, Home/End in all encodings, ^A ^E', () => {
    const { type } = rl();
    type('abc');
    expect(type('\x1b[D\x1b[D')).toBe(L + L);
    expect(type('\x1b[C')).toBe(R);
    expect(type('\x01')).toBe(L + L);
    expect(type('\x05')).toBe(R + R + R);
    expect(type('\x1b[1~')).toBe(L + L + L);
    expect(type('\x1b[4~')).toBe(R + R + R);
    expect(type('\x1bOH')).toBe(L + L + L);
    expect(type('\x1bOF')).toBe(R + R + R);
    expect(type('\x9bD')).toBe(L);
  });

  it('edits: backspace (0x7f, 0x08), delete (^D, ESC[3~), ^W; ^U ^K ^C and ESC x do nothing', () => {
    const { type, rs } = rl();
    type('info stXtus');
    expect(type('\x1b[D\x1b[D\x1b[D\x7f')).toBe(`${L}${L}${L}${L.repeat(8)}info sttus${K}${L}${L}${L}`);
    expect(type('a')).toBe(`${L.repeat(7)}info status${K}${L}${L}${L}`);
    type('\x05 junk');
    expect(type('\x17')).toBe(`${L.repeat(16)}info status ${K}`);
    expect(type('\x15\x0b\x03\x1bx')).toBe('');
    expect(rs.cmdBuf).toBe('info status ');
    expect(type('\x08')).toBe(`${L.repeat(12)}info status${K}`);
    type('\x01');
    expect(type('\x04')).toBe(`nfo status${K}${L.repeat(10)}`);
    expect(type('\x1b[3~')).toBe(`fo status${K}${L.repeat(9)}`);
  });

  it('history: 64 entries, repeats move to the end, up stops at the oldest, down past the newest clears', () => {
    const { type, rs } = rl();
    type('a\nb\na\n');
    expect(rs.history).toEqual(['b', 'a']);
    expect(type('\x1b[A')).toBe(`a${K}`);
    expect(type('\x1b[A')).toBe(`${L}b${K}`);
    expect(type('\x1b[A')).toBe('');
    expect(type('\x1b[B')).toBe(`${L}a${K}`);
    expect(type('\x1b[B')).toBe(`${L}${K}`);
    expect(type('\x1b[B')).toBe('');
    for (let i = 0; i < 70; i++) type(`c${i}\n`);
    expect(rs.history).toHaveLength(READLINE_MAX_CMDS);
    expect(rs.history[0]).toBe('c6');
    type('\x1b[A\x1b[A\n'); // re-entering a recalled line moves it to the end
    expect(rs.history.at(-1)).toBe('c68');
    expect(rs.history.at(-2)).toBe('c69');
  });

  it('completes one match with a space, several in 80-column rows then the prompt', () => {
    const one = rl(['info']);
    expect(one.type('inf\t')).toBe(`i${K}${L}in${K}${L}${L}inf${K}${L}${L}${L}info ${K}`);
    const many = rl(['status', 'stats']);
    many.type('info st');
    expect(many.type('\t')).toBe(`\nstats     status    \n(qemu) info stat${K}`);
    const wide = rl(Array.from({ length: 9 }, (_, i) => `command_number_${i}`));
    expect(wide.type('\t').split('\n')[1]).toBe('command_number_0  command_number_1  command_number_2  command_number_3  ');
  });

  it('shows the prompt and forgets what was drawn', () => {
    const { type, rs, out } = rl();
    type('x');
    out.length = 0;
    readlineShowPrompt(rs);
    expect(out.join('')).toBe('(qemu) ');
    expect(type('y')).toBe(`xy${K}`);
  });
});
