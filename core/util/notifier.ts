// Notifier lists (QEMU's util/notify.c): how a lower layer tells a higher one something (a QAPI
// event, a run-state change) without importing it. Notifiers run in the order they were added.

export interface NotifierList<T> {
  notifiers: ((data: T) => void)[];
}

export function notifierListCreate<T>(): NotifierList<T> {
  return { notifiers: [] };
}

/** @qemu notifier_list_add (appends; QEMU prepends, but every detvm user wants FIFO). */
export function notifierListAdd<T>(l: NotifierList<T>, fn: (data: T) => void): () => void {
  l.notifiers.push(fn);
  return () => {
    const i = l.notifiers.indexOf(fn);
    if (i >= 0) l.notifiers.splice(i, 1);
  };
}

/** @qemu notifier_list_notify */
export function notifierListNotify<T>(l: NotifierList<T>, data: T): void {
  for (const fn of [...l.notifiers]) fn(data);
}
