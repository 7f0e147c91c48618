// The configuration record that follows the stream header (migration/savevm.c
// vmstate_configuration): the machine type name and, when the target page size is variable,
// its page bits. Loading it checks that the stream was made for this machine type.
// Invariant: the live object is built from the local machine; loads only read it.

import { TARGET_PAGE_BITS } from '../memory/index.ts';
import { EINVAL } from './errors.ts';
import { latin1Bytes, latin1String } from './qemu-file.ts';
import {
  type VMStateDescription, type VMStateStaged, vmstateUint32, vmstateVbuffer,
} from './vmstate-types.ts';

/** riscv has a fixed page size: TARGET_PAGE_BITS_MIN equals TARGET_PAGE_BITS. */
export const TARGET_PAGE_BITS_MIN = 12;

/** The longest machine type name a stream may bring (QEMU's are a few dozen bytes). */
export const CONFIGURATION_NAME_MAX = 256;

/** The part of QEMU's SaveState that the configuration section describes. */
export interface ConfigurationState {
  /** Length of `name` (set by pre_save). */
  len: number;
  name: Uint8Array;
  targetPageBits: number;
  /** The local machine type name (MACHINE_GET_CLASS(current_machine)->name). */
  localName: string;
}

/** The configuration state of a machine whose type is `machineName` ('virt'). */
export function configurationStateCreate(machineName: string): ConfigurationState {
  return {
    len: 0, name: new Uint8Array(0), targetPageBits: TARGET_PAGE_BITS, localName: machineName,
  };
}

/** @qemu configuration_pre_save */
function configurationPreSave(s: ConfigurationState): number {
  s.name = latin1Bytes(s.localName);
  s.len = s.name.length;
  s.targetPageBits = TARGET_PAGE_BITS;
  return 0;
}

/**
 * A stream without the target-page-bits subsection uses the minimum.
 * @qemu configuration_pre_load
 */
function configurationPreLoad(staged: VMStateStaged): number {
  staged.targetPageBits = TARGET_PAGE_BITS_MIN;
  return 0;
}

/** C strncmp over the received bytes against the local name: 0 when they match. */
function strncmpName(received: Uint8Array, local: string, n: number): number {
  for (let i = 0; i < n; i++) {
    const a = received[i] ?? 0;
    const b = i < local.length ? local.charCodeAt(i) : 0;
    if (a !== b) return a - b;
    if (a === 0) return 0;
  }
  return 0;
}

/** @qemu configuration_post_load */
function configurationPostLoad(
  staged: VMStateStaged, _v: number, live: ConfigurationState, report: (m: string) => void,
): number {
  const name = staged.name instanceof Uint8Array ? staged.name : new Uint8Array(0);
  const len = typeof staged.len === 'number' ? staged.len : 0;
  if (strncmpName(name, live.localName, len) !== 0) {
    // %.*s prints at most len bytes and stops at a NUL.
    const nul = name.indexOf(0);
    const shown = latin1String(name.subarray(0, nul >= 0 ? Math.min(nul, len) : len));
    report(`Machine type received is '${shown}' and local is '${live.localName}'`);
    return -EINVAL;
  }
  if (staged.targetPageBits !== TARGET_PAGE_BITS) {
    const bits = String(staged.targetPageBits);
    report(`Received TARGET_PAGE_BITS is ${bits} but local is ${TARGET_PAGE_BITS}`);

    return -EINVAL;
  }
  return 0;
}

const vmstateTargetPageBits: VMStateDescription<ConfigurationState> = {
  name: 'configuration/target-page-bits',
  versionId: 1,
  minimumVersionId: 1,
  needed: () => TARGET_PAGE_BITS > TARGET_PAGE_BITS_MIN,
  fields: [vmstateUint32('target_page_bits', 'targetPageBits')],
};

/** @qemu migration/savevm.c vmstate_configuration (loaded at version 0, as QEMU does) */
export const vmstateConfiguration: VMStateDescription<ConfigurationState> = {
  name: 'configuration',
  versionId: 1,
  minimumVersionId: 0,
  preSave: configurationPreSave,
  preLoad: configurationPreLoad,
  postLoad: configurationPostLoad,
  fields: [
    vmstateUint32('len', 'len'),
    vmstateVbuffer('name', 'name', 'len', CONFIGURATION_NAME_MAX),
  ],
  subsections: [vmstateTargetPageBits],
};
