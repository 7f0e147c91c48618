// QEMU's line editor (util/readline.c, 7.2): one byte at a time, every byte followed by a redraw
// (readline_update) whose escape sequences are reproduced byte for byte, a 64-entry history with
// move-to-end on reuse, and TAB completion listed in 80-column rows. Lines are byte strings.
// Invariants: 0 <= cmdBufIndex <= cmdBuf.length <= READLINE_CMD_BUF_SIZE; history has no holes.

/** @qemu include/qemu/readline.h */
export const READLINE_CMD_BUF_SIZE = 4095;
export const READLINE_MAX_CMDS = 64;
export const READLINE_MAX_COMPLETIONS = 256;

const IS_NORM = 0;
const IS_ESC = 1;
const IS_CSI = 2;
const IS_SS3 = 3;

/** What readline calls out to (printf_func, flush_func, completion_finder, readline_func). */
export interface ReadLineHost {
  print(text: string): void;
  flush(): void;
  /** Fill completions for `cmdline` (the text left of the cursor). */
  completionFinder(rs: ReadLineState, cmdline: string): void;
  /** A complete line was entered. */
  lineEntered(cmdline: string): void;
}

/** @qemu include/qemu/readline.h ReadLineState */
export interface ReadLineState {
  cmdBuf: string;
  cmdBufIndex: number;
  lastCmdBuf: string;
  lastCmdBufIndex: number;
  escState: number;
  escParam: number;
  /** Oldest first; at most READLINE_MAX_CMDS entries. */
  history: string[];
  /** -1 when not browsing the history. */
  histEntry: number;
  completions: string[];
  completionIndex: number;
  prompt: string;
  readPassword: boolean;
  host: ReadLineHost;
}

/** @qemu util/readline.c readline_init */
export function readlineInit(host: ReadLineHost): ReadLineState {
  return {
    cmdBuf: '', cmdBufIndex: 0, lastCmdBuf: '', lastCmdBufIndex: 0, escState: IS_NORM, escParam: 0,
    history: [], histEntry: -1, completions: [], completionIndex: 0, prompt: '', readPassword: false, host,
  };
}

/** Print the prompt and forget what was drawn. @qemu readline_show_prompt */
export function readlineShowPrompt(rs: ReadLineState): void {
  rs.host.print(rs.prompt);
  rs.host.flush();
  rs.lastCmdBufIndex = 0;
  rs.lastCmdBuf = '';
  rs.escState = IS_NORM;
}

/** Drop the line being edited. @qemu readline_restart */
export function readlineRestart(rs: ReadLineState): void {
  rs.cmdBufIndex = 0;
  rs.cmdBuf = '';
}

/** @qemu readline_start (prompt truncated to 255 bytes as QEMU's 256-byte buffer) */
export function readlineStart(rs: ReadLineState, prompt: string, readPassword: boolean): void {
  rs.prompt = prompt.slice(0, 255);
  rs.readPassword = readPassword;
  readlineRestart(rs);
}

/** History entry `index` (0 = oldest) or null. @qemu readline_get_history */
export function readlineGetHistory(rs: ReadLineState, index: number): string | null {
  return rs.history[index] ?? null;
}

/**
 * Redraw: on a content change, move left over the old cursor column, print the line and erase
 * to the end; then move the cursor to its column. @qemu util/readline.c readline_update
 */
function readlineUpdate(rs: ReadLineState): void {
  const out: string[] = [];
  if (rs.cmdBuf !== rs.lastCmdBuf) {
    out.push('\x1b[D'.repeat(rs.lastCmdBufIndex));
    // QEMU prints the buffer as a C string: a NUL byte ends it.
    const nul = rs.cmdBuf.indexOf('\0');
    const shown = nul < 0 ? rs.cmdBuf : rs.cmdBuf.slice(0, nul);
    out.push(rs.readPassword ? '*'.repeat(shown.length) : shown);
    out.push('\x1b[K');
    rs.lastCmdBuf = rs.cmdBuf;
    rs.lastCmdBufIndex = rs.cmdBuf.length;
  }
  if (rs.cmdBufIndex !== rs.lastCmdBufIndex) {
    const delta = rs.cmdBufIndex - rs.lastCmdBufIndex;
    out.push(delta > 0 ? '\x1b[C'.repeat(delta) : '\x1b[D'.repeat(-delta));
    rs.lastCmdBufIndex = rs.cmdBufIndex;
  }
  // printf_func is called per piece in QEMU; the bytes are the same, so print them at once.
  const text = out.join('');
  if (text.length > 0) rs.host.print(text);
  rs.host.flush();
}

function insertChar(rs: ReadLineState, ch: string): void {
  if (rs.cmdBufIndex < READLINE_CMD_BUF_SIZE) {
    rs.cmdBuf = rs.cmdBuf.slice(0, rs.cmdBufIndex) + ch + rs.cmdBuf.slice(rs.cmdBufIndex);
    rs.cmdBufIndex++;
  }
}

function deleteChar(rs: ReadLineState): void {
  if (rs.cmdBufIndex < rs.cmdBuf.length) {
    rs.cmdBuf = rs.cmdBuf.slice(0, rs.cmdBufIndex) + rs.cmdBuf.slice(rs.cmdBufIndex + 1);
  }
}

function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';
}

/** ^W. @qemu readline_backword */
function backword(rs: ReadLineState): void {
  if (rs.cmdBufIndex === 0 || rs.cmdBufIndex > rs.cmdBuf.length) return;
  let start = rs.cmdBufIndex - 1;
  while (start > 0 && isSpace(rs.cmdBuf[start])) --start;
  while (start > 0) {
    if (isSpace(rs.cmdBuf[start])) {
      ++start;
      break;
    }
    --start;
  }
  if (start < rs.cmdBufIndex) {
    rs.cmdBuf = rs.cmdBuf.slice(0, start) + rs.cmdBuf.slice(rs.cmdBufIndex);
    rs.cmdBufIndex = start;
  }
}

/** @qemu readline_up_char */
function upChar(rs: ReadLineState): void {
  if (rs.histEntry === 0) return;
  if (rs.histEntry === -1) rs.histEntry = rs.history.length;
  rs.histEntry--;
  if (rs.histEntry >= 0) {
    rs.cmdBuf = rs.history[rs.histEntry]!.slice(0, READLINE_CMD_BUF_SIZE);
    rs.cmdBufIndex = rs.cmdBuf.length;
  }
}

/** @qemu readline_down_char */
function downChar(rs: ReadLineState): void {
  if (rs.histEntry === -1) return;
  const next = rs.histEntry + 1;
  if (rs.histEntry < READLINE_MAX_CMDS - 1 && next < rs.history.length) {
    rs.histEntry = next;
    rs.cmdBuf = rs.history[next]!.slice(0, READLINE_CMD_BUF_SIZE);
  } else {
    rs.cmdBuf = '';
    rs.histEntry = -1;
  }
  rs.cmdBufIndex = rs.cmdBuf.length;
}

/** Remember a line; a repeated line moves to the end. @qemu readline_hist_add */
function histAdd(rs: ReadLineState, cmdline: string): void {
  if (cmdline.length === 0) return;
  let idx = -1;
  if (rs.histEntry !== -1 && rs.history[rs.histEntry] === cmdline) idx = rs.histEntry;
  if (idx < 0) idx = rs.history.indexOf(cmdline);
  if (idx >= 0) {
    rs.history.splice(idx, 1);
  } else if (rs.history.length === READLINE_MAX_CMDS) {
    rs.history.shift();
  }
  rs.history.push(cmdline);
  rs.histEntry = -1;
}

/** @qemu readline_add_completion */
export function readlineAddCompletion(rs: ReadLineState, str: string): void {
  if (rs.completions.length < READLINE_MAX_COMPLETIONS) rs.completions.push(str);
}

/** @qemu readline_set_completion_index */
export function readlineSetCompletionIndex(rs: ReadLineState, index: number): void {
  rs.completionIndex = index;
}

function byteCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0; // UTF-16 units are bytes here, so this is strcmp
}

/** TAB. @qemu util/readline.c readline_completion */
function completion(rs: ReadLineState): void {
  rs.completions = [];
  rs.host.completionFinder(rs, rs.cmdBuf.slice(0, rs.cmdBufIndex));
  const list = rs.completions;
  if (list.length === 0) return;
  if (list.length === 1) {
    const c = list[0]!;
    for (let i = rs.completionIndex; i < c.length; i++) insertChar(rs, c[i]!);
    if (c.length > 0 && !c.endsWith('/')) insertChar(rs, ' ');
  } else {
    list.sort(byteCompare);
    rs.host.print('\n');
    let maxWidth = 0;
    let maxPrefix = 0;
    list.forEach((c, i) => {
      if (i === 0) {
        maxPrefix = c.length;
      } else {
        if (c.length < maxPrefix) maxPrefix = c.length;
        for (let j = 0; j < maxPrefix; j++) {
          if (c[j] !== list[0]![j]) maxPrefix = j;
        }
      }
      if (c.length > maxWidth) maxWidth = c.length;
    });
    if (maxPrefix > 0) {
      for (let i = rs.completionIndex; i < maxPrefix; i++) insertChar(rs, list[0]![i]!);
    }
    maxWidth = Math.min(80, Math.max(10, maxWidth + 2));
    const nbCols = Math.floor(80 / maxWidth);
    let j = 0;
    const rows: string[] = [];
    list.forEach((c, i) => {
      rows.push(c.padEnd(maxWidth, ' '));
      if (++j === nbCols || i === list.length - 1) {
        rows.push('\n');
        j = 0;
      }
    });
    rs.host.print(rows.join(''));
    readlineShowPrompt(rs);
  }
  rs.completions = [];
}

function enter(rs: ReadLineState): void {
  const line = rs.cmdBuf;
  if (!rs.readPassword) histAdd(rs, line);
  rs.host.print('\n');
  rs.cmdBufIndex = 0;
  rs.cmdBuf = '';
  rs.lastCmdBufIndex = 0;
  rs.lastCmdBuf = '';
  rs.host.lineEntered(line);
}

function handleNorm(rs: ReadLineState, ch: number): void {
  switch (ch) {
    case 1: rs.cmdBufIndex = 0; break;
    case 4: deleteChar(rs); break;
    case 5: rs.cmdBufIndex = rs.cmdBuf.length; break;
    case 9: completion(rs); break;
    case 10:
    case 13: enter(rs); break;
    case 23: backword(rs); break;
    case 27: rs.escState = IS_ESC; break;
    case 127:
    case 8:
      if (rs.cmdBufIndex > 0) {
        rs.cmdBufIndex--;
        deleteChar(rs);
      }
      break;
    case 155: rs.escState = IS_CSI; break;
    default:
      if (ch >= 32) insertChar(rs, String.fromCharCode(ch));
  }
}

function handleCsi(rs: ReadLineState, ch: number): void {
  const c = String.fromCharCode(ch);
  if (c >= '0' && c <= '9') {
    rs.escParam = (rs.escParam * 10 + (ch - 48)) | 0; // C int arithmetic
    return;
  }
  switch (c) {
    case 'A':
    case 'F': upChar(rs); break;
    case 'B':
    case 'E': downChar(rs); break;
    case 'D': if (rs.cmdBufIndex > 0) rs.cmdBufIndex--; break;
    case 'C': if (rs.cmdBufIndex < rs.cmdBuf.length) rs.cmdBufIndex++; break;
    case '~':
      if (rs.escParam === 1) rs.cmdBufIndex = 0;
      else if (rs.escParam === 3) deleteChar(rs);
      else if (rs.escParam === 4) rs.cmdBufIndex = rs.cmdBuf.length;
      break;
    default: break;
  }
  rs.escState = IS_NORM;
}

/**
 * Handle one input byte, then redraw. A line callback may run (Enter) before the redraw.
 * @qemu util/readline.c readline_handle_byte
 */
export function readlineHandleByte(rs: ReadLineState, ch: number): void {
  switch (rs.escState) {
    case IS_NORM:
      handleNorm(rs, ch);
      break;
    case IS_ESC:
      if (ch === 0x5b) {
        rs.escState = IS_CSI;
        rs.escParam = 0;
      } else if (ch === 0x4f) {
        rs.escState = IS_SS3;
        rs.escParam = 0;
      } else {
        rs.escState = IS_NORM;
      }
      break;
    case IS_CSI:
      handleCsi(rs, ch);
      break;
    default:
      if (ch === 0x46) rs.cmdBufIndex = rs.cmdBuf.length;
      else if (ch === 0x48) rs.cmdBufIndex = 0;
      rs.escState = IS_NORM;
      break;
  }
  readlineUpdate(rs);
}
