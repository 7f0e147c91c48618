// Migration capabilities and parameters (migration/migration.c + qapi/migration.json, QEMU 7.2):
// the capability list in enum order, the parameter defaults that query-migrate-parameters and
// `info migrate_parameters` show, and the checks of migrate-set-capabilities / -parameters with
// QEMU's texts. detvm acts on the `events` capability and the `max-bandwidth` and
// `downtime-limit` parameters; other capabilities can be read and set to false, other
// parameters can be read only (setting them is refused with a message naming detvm).
// Invariant: values are plain data; they are machine configuration, not VM state.

/** MigrationCapability in QEMU 7.2's enum order (block is listed: 7.2 builds with it). */
export const MIGRATION_CAPABILITIES = [
  'xbzrle', 'rdma-pin-all', 'auto-converge', 'zero-blocks', 'compress', 'events', 'postcopy-ram',
  'x-colo', 'release-ram', 'block', 'return-path', 'pause-before-switchover', 'multifd',
  'dirty-bitmaps', 'postcopy-blocktime', 'late-block-activate', 'x-ignore-shared', 'validate-uuid',
  'background-snapshot', 'zero-copy-send', 'postcopy-preempt',
] as const;
export type MigrationCapability = (typeof MIGRATION_CAPABILITIES)[number];

/** Capabilities detvm implements (others may only be set to false). */
export const MIGRATION_CAPABILITIES_SUPPORTED: readonly MigrationCapability[] = ['events'];

/** @qemu MAX_THROTTLE (128 MiB/s) and DEFAULT_MIGRATE_SET_DOWNTIME (300 ms) */
export const MAX_THROTTLE = 128 << 20;
export const DEFAULT_MIGRATE_SET_DOWNTIME_MS = 300;
/** @qemu MAX_MIGRATE_DOWNTIME_SECONDS */
export const MAX_MIGRATE_DOWNTIME_SECONDS = 2000;

/** A parameter value as QMP shows it. */
export type MigrationParamValue = number | boolean | string;

/**
 * MigrationParameters in QEMU 7.2's schema order with their defaults, as query-migrate-parameters
 * returns them. `fmt` is how `info migrate_parameters` prints the value.
 */
export const MIGRATION_PARAMETERS: ReadonlyArray<{
  name: string;
  dflt: MigrationParamValue;
  fmt: 'ms' | 'int' | 'onoff' | 'str' | 'bw' | 'bytes' | 'enum';
}> = [
  { name: 'announce-initial', dflt: 50, fmt: 'ms' },
  { name: 'announce-max', dflt: 550, fmt: 'ms' },
  { name: 'announce-rounds', dflt: 5, fmt: 'int' },
  { name: 'announce-step', dflt: 100, fmt: 'ms' },
  { name: 'compress-level', dflt: 1, fmt: 'int' },
  { name: 'compress-threads', dflt: 8, fmt: 'int' },
  { name: 'compress-wait-thread', dflt: true, fmt: 'onoff' },
  { name: 'decompress-threads', dflt: 2, fmt: 'int' },
  { name: 'throttle-trigger-threshold', dflt: 50, fmt: 'int' },
  { name: 'cpu-throttle-initial', dflt: 20, fmt: 'int' },
  { name: 'cpu-throttle-increment', dflt: 10, fmt: 'int' },
  { name: 'cpu-throttle-tailslow', dflt: false, fmt: 'onoff' },
  { name: 'tls-creds', dflt: '', fmt: 'str' },
  { name: 'tls-hostname', dflt: '', fmt: 'str' },
  { name: 'tls-authz', dflt: '', fmt: 'str' },
  { name: 'max-bandwidth', dflt: MAX_THROTTLE, fmt: 'bw' },
  { name: 'downtime-limit', dflt: DEFAULT_MIGRATE_SET_DOWNTIME_MS, fmt: 'ms' },
  { name: 'x-checkpoint-delay', dflt: 20000, fmt: 'ms' },
  { name: 'block-incremental', dflt: false, fmt: 'onoff' },
  { name: 'multifd-channels', dflt: 2, fmt: 'int' },
  { name: 'xbzrle-cache-size', dflt: 64 << 20, fmt: 'bytes' },
  { name: 'max-postcopy-bandwidth', dflt: 0, fmt: 'int' },
  { name: 'max-cpu-throttle', dflt: 99, fmt: 'int' },
  { name: 'multifd-compression', dflt: 'none', fmt: 'enum' },
  { name: 'multifd-zlib-level', dflt: 1, fmt: 'int' },
  { name: 'multifd-zstd-level', dflt: 1, fmt: 'int' },
];

/** The order `info migrate_parameters` prints them in (7.2 hmp_info_migrate_parameters). */
export const HMP_PARAMETER_ORDER = [
  'announce-initial', 'announce-max', 'announce-rounds', 'announce-step', 'compress-level',
  'compress-threads', 'compress-wait-thread', 'decompress-threads', 'throttle-trigger-threshold',
  'cpu-throttle-initial', 'cpu-throttle-increment', 'cpu-throttle-tailslow', 'max-cpu-throttle',
  'tls-creds', 'tls-hostname', 'max-bandwidth', 'downtime-limit', 'x-checkpoint-delay',
  'block-incremental', 'multifd-channels', 'multifd-compression', 'xbzrle-cache-size',
  'max-postcopy-bandwidth', 'tls-authz',
] as const;

/** Parameters detvm acts on (others are shown with QEMU's defaults and cannot be set). */
export const MIGRATION_PARAMETERS_SUPPORTED = ['max-bandwidth', 'downtime-limit'] as const;
export type MigrationParamSupported = (typeof MIGRATION_PARAMETERS_SUPPORTED)[number];

export interface MigrationConfig {
  caps: Record<MigrationCapability, boolean>;
  /** Bytes per second; 0: unlimited. */
  maxBandwidth: number;
  downtimeLimitMs: number;
}

export function migrationConfigCreate(): MigrationConfig {
  const caps = {} as Record<MigrationCapability, boolean>;
  for (const c of MIGRATION_CAPABILITIES) caps[c] = false;
  return { caps, maxBandwidth: MAX_THROTTLE, downtimeLimitMs: DEFAULT_MIGRATE_SET_DOWNTIME_MS };
}

/** Current value of every parameter, in schema order. @qemu qmp_query_migrate_parameters */
export function migrationParamsQuery(c: MigrationConfig): Array<[string, MigrationParamValue]> {
  return MIGRATION_PARAMETERS.map((p) => {
    if (p.name === 'max-bandwidth') return [p.name, c.maxBandwidth];
    if (p.name === 'downtime-limit') return [p.name, c.downtimeLimitMs];
    return [p.name, p.dflt];
  });
}

/** One `info migrate_parameters` line. @qemu hmp_info_migrate_parameters */
export function migrationParamLine(name: string, v: MigrationParamValue): string {
  const fmt = MIGRATION_PARAMETERS.find((p) => p.name === name)?.fmt ?? 'int';
  switch (fmt) {
    case 'ms': return `${name}: ${String(v)} ms`;
    case 'onoff': return `${name}: ${v ? 'on' : 'off'}`;
    case 'str': return `${name}: '${String(v)}'`;
    case 'bw': return `${name}: ${String(v)} bytes/second`;
    case 'bytes': return `${name}: ${String(v)} bytes`;
    default: return `${name}: ${String(v)}`;
  }
}

/**
 * Check and apply new parameter values (already type-checked as unsigned 64-bit integers).
 * Returns QEMU's error text or null. @qemu migrate_params_check, migrate_params_apply
 */
export function migrationParamsSet(
  c: MigrationConfig, values: Partial<Record<MigrationParamSupported, bigint>>,
): string | null {
  const bw = values['max-bandwidth'];
  const dt = values['downtime-limit'];
  if (bw !== undefined && bw > BigInt(Number.MAX_SAFE_INTEGER)) {
    // SIZE_MAX is 2^64-1 on QEMU's hosts; detvm's byte counters are safe integers.
    return "Parameter 'max_bandwidth' expects an integer in the range of 0 to 9007199254740991"
      + ' bytes/second';
  }
  if (dt !== undefined && dt > BigInt(MAX_MIGRATE_DOWNTIME_SECONDS * 1000)) {
    return "Parameter 'downtime_limit' expects an integer in the range of 0 to"
      + ` ${MAX_MIGRATE_DOWNTIME_SECONDS} seconds`;
  }
  if (bw !== undefined) c.maxBandwidth = Number(bw);
  if (dt !== undefined) c.downtimeLimitMs = Number(dt);
  return null;
}

/**
 * Check and apply capability changes. `running` is migration_is_running; error text or null.
 * @qemu qmp_migrate_set_capabilities, migrate_caps_check
 */
export function migrationCapsSet(
  c: MigrationConfig, changes: ReadonlyArray<[MigrationCapability, boolean]>, running: boolean,
): string | null {
  if (running) return "There's a migration process in progress";
  for (const [cap, on] of changes) {
    if (on && !MIGRATION_CAPABILITIES_SUPPORTED.includes(cap)) {
      return `detvm does not support the migration capability '${cap}'`;
    }
  }
  for (const [cap, on] of changes) c.caps[cap] = on;
  return null;
}
