export { AssertionError, assert, assertNever, assertNs } from './assert.ts';
export { prngCreate, prngNextU32, prngInt, prngFloat, prngDeriveSeed } from './prng.ts';
export type { PrngState } from './prng.ts';
export { notifierListCreate, notifierListAdd, notifierListNotify } from './notifier.ts';
export type { NotifierList } from './notifier.ts';
