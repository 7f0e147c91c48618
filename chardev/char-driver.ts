// What every backend's open function returns (the ChardevClass open callback, chardev/char.c
// qemu_char_open): the created chardev and whether it starts open (be_opened: OPENED is sent at
// creation), or QEMU's error text.

import type { Chardev } from '../core/char/index.ts';

export type OpenResult =
  | { ok: true; chr: Chardev; beOpened: boolean }
  | { ok: false; error: string };
