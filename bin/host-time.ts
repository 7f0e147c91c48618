// The host's local time zone for the kernel, which has none: the offset from UTC that snapshot
// names (vm-%Y%m%d%H%M%S) and `info snapshots` dates use, as QEMU uses the host's local time.
// Read once at start-up (a DST change during a run is not followed, as a fixed offset).

/** Seconds east of UTC of the host's local time now (MachineConfig.utcOffsetSec). */
export function hostUtcOffsetSec(): number {
  return -new Date().getTimezoneOffset() * 60;
}
