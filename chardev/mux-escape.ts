// The mux escape sequences (chardev/char-mux.c mux_proc_byte, mux_print_help; 7.2). After the
// escape character (Ctrl-A unless -echr says otherwise):
//   h ?  print the help                 x  "QEMU: Terminated\n\r", then exit (7.2: exit(0))
//   s    commit disks (blk_commit_all)   t  toggle timestamps
//   b    BREAK to the focused frontend   c  focus the next frontend ((focus + 1) % mux_cnt)
//   the escape character itself is passed through; anything else is dropped silently.

import { type Chardev, CHR_EVENT_BREAK, charState, qemuChrBeEvent } from '../core/char/index.ts';
import { type MuxState, muxSetFocus, muxWriteAll } from './char-mux.ts';

const MUX_HELP = [
  '% h    print this help\n\r',
  '% x    exit emulator\n\r',
  '% s    save disk data back to file (if -snapshot)\n\r',
  '% t    toggle console timestamps\n\r',
  '% b    send break (magic sysrq)\n\r',
  '% c    switch between console and monitor\n\r',
  '% %  sends %\n\r',
];

/** The help text for escape character `escape`. @qemu chardev/char-mux.c mux_print_help */
export function muxHelpText(escape: number): string {
  let cbuf: string;
  let ebuf: string;
  if (escape > 0 && escape < 26) {
    cbuf = '\n\r';
    ebuf = `C-${String.fromCharCode(escape - 1 + 0x61)}`;
  } else {
    cbuf = `\n\rEscape-Char set to Ascii: 0x${escape.toString(16).padStart(2, '0')}\n\r\n\r`;
    ebuf = 'Escape-Char';
  }
  return cbuf + MUX_HELP.map((line) => line.replaceAll('%', ebuf)).join('');
}

/**
 * Handle one input byte: returns true if it is for the focused frontend, false if the escape
 * logic consumed it. @qemu chardev/char-mux.c mux_proc_byte
 */
export function muxProcByte(chr: Chardev, d: MuxState, ch: number): boolean {
  const s = charState(chr.m);
  const escape = s.termEscapeChar;
  if (d.termGotEscape) {
    d.termGotEscape = false;
    if (ch === escape) return true;
    switch (ch) {
      case 0x3f: // '?'
      case 0x68: // 'h'
        muxWriteAll(chr, muxHelpText(escape));
        break;
      case 0x78: // 'x'
        muxWriteAll(chr, 'QEMU: Terminated\n\r');
        // QEMU 7.2 calls exit(0) here: nothing after this byte is processed.
        d.terminated = true;
        s.hooks.muxExit?.(chr);
        break;
      case 0x73: // 's'
        s.hooks.blkCommitAll?.();
        break;
      case 0x62: // 'b'
        qemuChrBeEvent(chr, CHR_EVENT_BREAK);
        break;
      case 0x63: // 'c'
        if (d.muxCnt > 0) muxSetFocus(chr, (d.focus + 1) % d.muxCnt);
        break;
      case 0x74: // 't'
        d.timestamps = !d.timestamps;
        d.timestampsStart = -1;
        d.linestart = false;
        break;
      default:
        break;
    }
    return false;
  }
  if (ch === escape) {
    d.termGotEscape = true;
    return false;
  }
  return true;
}
