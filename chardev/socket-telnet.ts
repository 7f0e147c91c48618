// Telnet and TN3270 on a socket chardev (chardev/char-socket.c): the negotiation bytes a server
// sends on every new connection, and the IAC input filter with QEMU's exact quirks. The filter
// is a 3-state machine in `doTelnetopt` that persists across reads:
//   1       normal: IAC (0xFF) -> 2 and is dropped; other bytes are kept
//   2       after IAC: IAC -> one literal 0xFF kept, back to 1; BREAK (0xF3) -> CHR_EVENT_BREAK
//           and one extra step; (tn3270: EOR/SB/SE kept as "FF xx" + extra step; IP/NOP extra
//           step); then +1
//   3       the byte after the command is dropped; then +1 -> 4 wraps to 1
// Net effect (telnet): FF FF -> FF; FF F3 -> BREAK (2 bytes); any other FF c x -> dropped,
// including the payload byte after a 2-byte command such as IAC NOP (FF F1).

export const IAC = 0xff;
export const IAC_SE = 0xf0;
export const IAC_NOP = 0xf1;
export const IAC_BREAK = 0xf3;
export const IAC_IP = 0xf4;
export const IAC_SB = 0xfa;
export const IAC_EOR = 0xef;

/**
 * IAC WILL ECHO, IAC WILL SUPPRESS-GO-AHEAD, IAC WILL BINARY, IAC DO BINARY.
 * @qemu chardev/char-socket.c tcp_chr_telnet_init
 */
export const TELNET_INIT: readonly number[] = [
  0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfb, 0x00, 0xff, 0xfd, 0x00,
];

/** TN3270 negotiation (RFC 1576). @qemu chardev/char-socket.c tcp_chr_telnet_init */
export const TN3270_INIT: readonly number[] = [
  0xff, 0xfd, 0x19, 0xff, 0xfb, 0x19, 0xff, 0xfd, 0x00, 0xff, 0xfb, 0x00,
  0xff, 0xfd, 0x18, 0xff, 0xfa, 0x18, 0x01, 0xff, 0xf0,
];

/** TN3270 commands kept in the data as "IAC x" (they delimit records). */
function isTn3270Kept(b: number): boolean {
  return b === IAC_EOR || b === IAC_SB || b === IAC_SE;
}

/** The filter's state: `doTelnetopt` in 1..3 while telnet is on. */
export interface TelnetFilterState {
  doTelnetopt: number;
  isTn3270: boolean;
}

/**
 * Strip telnet commands from `buf` (the caller's copy is not modified). BREAK commands call
 * `onBreak` as they are met, before the caller delivers the kept bytes.
 * @qemu chardev/char-socket.c tcp_chr_process_IAC_bytes
 */
export function tcpChrProcessIacBytes(
  s: TelnetFilterState, buf: Uint8Array, onBreak: () => void,
): Uint8Array {
  const out = new Uint8Array(buf.length);
  let j = 0;
  for (const b of buf) {
    if (s.doTelnetopt > 1) {
      if (b === IAC && s.doTelnetopt === 2) {
        out[j++] = b; // double IAC means a literal 0xFF
        s.doTelnetopt = 1;
      } else {
        if (b === IAC_BREAK && s.doTelnetopt === 2) {
          onBreak();
          s.doTelnetopt++;
        } else if (s.isTn3270 && s.doTelnetopt === 2 && isTn3270Kept(b)) {
          out[j++] = IAC;
          out[j++] = b;
          s.doTelnetopt++;
        } else if (s.isTn3270 && (b === IAC_IP || b === IAC_NOP) && s.doTelnetopt === 2) {
          s.doTelnetopt++;
        }
        s.doTelnetopt++;
      }
      if (s.doTelnetopt >= 4) s.doTelnetopt = 1;
    } else if (b === IAC) {
      s.doTelnetopt = 2;
    } else {
      out[j++] = b;
    }
  }
  return out.subarray(0, j);
}
