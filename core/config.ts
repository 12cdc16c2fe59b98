import path from 'node:path';

/**
 * Configuration, parsed once from the environment into a typed object. Invalid values fail fast
 * and name the variable. Never log this object whole: it holds credentials.
 */
export interface Config {
  /** Absent → the embedded PostgreSQL under dataDir. */
  databaseUrl: string | undefined;
  /** Absent → `temporal server start-dev` under dataDir. */
  temporalAddress: string | undefined;
  temporalNamespace: string;
  temporalTaskQueue: string;
  host: string;
  port: number;
  dataDir: string;
  /** `API_KEYS="tenantA:keyA,tenantB:keyB"`, bootstrapped into the api_keys table at start. */
  apiKeys: { tenantId: string; key: string }[];
  logLevel: string;
  embeddedPostgresPort: number;
  embeddedTemporalPort: number;
  embeddedTemporalUiPort: number;
  /** Timeout of one HTTP attempt when a call does not set its own `timeoutMs`. */
  httpTimeoutMs: number;
  /** base64 of 32 bytes (AES-256-GCM) sealing request secrets at rest; generated under DATA_DIR in embedded mode. */
  encryptionKey: string | undefined;
  /** Host names and CIDRs calls may reach although the egress guard would refuse them. */
  egressAllowlist: string[];
  /** Header-name fragments treated as secret on top of the built-in ones. */
  sensitiveHeaders: string[];
  /** Port of a /metrics endpoint for the worker and relay roles run alone (the api serves its own). */
  metricsPort: number | undefined;
  /** How often the relay looks for new events when no notification woke it. */
  relayPollMs: number;
  /**
   * How long before dueAt a call's timer fires (read by the relay, which starts the workflows).
   * The attempt waits out the rest in the worker, so Temporal's dispatch delay is spent before
   * dueAt instead of after it; nothing is sent before dueAt.
   */
  timerLeadMs: number;
  /**
   * How often the relay's reconciler checks that every unfinished call has a live workflow
   * (and once at start): the most a call waits after Temporal lost its data (ADR-0013).
   */
  reconcileIntervalMs: number;
  /** HTTP attempts one worker runs at once (each one holds a workflow task open while it runs). */
  workerAttemptSlots: number;
  /** Workflows a worker keeps in memory between their tasks (the SDK's sticky cache). */
  workerCachedWorkflows: number;
  /** How long a workflow task waits on a worker's sticky queue before any worker may take it. */
  workerStickyTimeoutMs: number;
  /** Base URL of the Temporal Web UI, used for links; absent when unknown. */
  temporalUiUrl: string | undefined;
  /** A workflow bundle made ahead of time (bundleWorkflowCode); absent → bundle at start. */
  workflowBundlePath: string | undefined;
  /** Per-tenant request rate limit of one api process (token bucket); see RateLimit. */
  rateLimit: RateLimit;
  /** How callbacks are delivered (ADR-0016); read by the relay, which starts the workflows. */
  callback: CallbackPolicy;
  /** Most schedules one tenant may hold (deleted ones do not count); ADR-0017. */
  schedulesPerTenant: number;
  /** Flow limits (ADR-0018), read by the worker, which admits attempts, and the relay (reserveAheadMs). */
  flow: FlowPolicy;
}

/**
 * How the worker applies flow limits: a lease not renewed for `leaseTtlMs` (its worker died)
 * stops counting; a waiting call asks again after at most `maxWaitMs`, or, when it holds a rate
 * key's send slot, when the slot comes (at most `maxSlotWaitMs`): a changed or deleted limit
 * wakes it by a signal, and reaches it by then if the signal is lost; which tenants have `host:`
 * limits is cached for `hostCacheMs`.
 */
export interface FlowPolicy {
  leaseTtlMs: number;
  maxWaitMs: number;
  maxSlotWaitMs: number;
  /** Waits up to this long are slept inside the attempt (no durable timer, no workflow task). */
  inProcessWaitMs: number;
  hostCacheMs: number;
  /**
   * How long before its dueAt a call with flowKeys reserves its send slots and sleeps until its
   * slot rather than its dueAt (0: never; the attempt then asks at dueAt). Read by the relay.
   */
  reserveAheadMs: number;
}

/**
 * Delivery of a call's callback: each attempt waits at most `timeoutMs` for a 2xx; the next one
 * follows after `initialIntervalMs`, doubling up to `maxIntervalMs`, until `maxAttempts`. The
 * defaults make 8 attempts over about 15 minutes.
 */
export interface CallbackPolicy {
  maxAttempts: number;
  initialIntervalMs: number;
  maxIntervalMs: number;
  timeoutMs: number;
}

/**
 * Each tenant may make `perSecond` requests per second on average and `burst` at once, per api
 * process (the buckets live in memory: N replicas allow N times as much). `perSecond` 0 = off.
 */
export interface RateLimit {
  perSecond: number;
  burst: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string, fallback: string): string {
  const v = env[name];
  return v === undefined || v.trim() === '' ? fallback : v.trim();
}

function optional(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got "${raw}"`);
  }
  return n;
}

function list(env: Env, name: string): string[] {
  return (optional(env, name) ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

function parseEncryptionKey(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  if (!/^[A-Za-z0-9+/]{43}=$/.test(raw) || Buffer.from(raw, 'base64').length !== 32) {
    throw new ConfigError('ENCRYPTION_KEY must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)');
  }
  return raw;
}

export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

function parseApiKeys(raw: string | undefined): { tenantId: string; key: string }[] {
  if (raw === undefined || raw.trim() === '') return [];
  return raw.split(',').map((entry, i) => {
    const sep = entry.indexOf(':');
    const tenantId = entry.slice(0, sep).trim();
    const key = entry.slice(sep + 1).trim();
    if (sep < 1 || !TENANT_ID_PATTERN.test(tenantId)) {
      throw new ConfigError(
        `API_KEYS entry ${i + 1} must look like "tenant:key" with a tenant id matching ${TENANT_ID_PATTERN.source}`,
      );
    }
    if (key.length < 16) {
      throw new ConfigError(`API_KEYS entry ${i + 1} (tenant ${tenantId}): key must be at least 16 characters`);
    }
    return { tenantId, key };
  });
}

const DEFAULT_RATE_LIMIT_PER_SECOND = 1000;

/** RATE_LIMIT_PER_SECOND (default 1000, 0 = off) and RATE_LIMIT_BURST (default twice the rate). */
function loadRateLimit(env: Env): RateLimit {
  const perSecond = int(env, 'RATE_LIMIT_PER_SECOND', DEFAULT_RATE_LIMIT_PER_SECOND, 0, 1_000_000);
  const burst = int(env, 'RATE_LIMIT_BURST', Math.max(1, perSecond * 2), 1, 10_000_000);
  return { perSecond, burst };
}

function loadCallbackPolicy(env: Env): CallbackPolicy {
  const initialIntervalMs = int(env, 'CALLBACK_RETRY_INITIAL_MS', 10_000, 100, 3_600_000);
  const maxIntervalMs = int(env, 'CALLBACK_RETRY_MAX_MS', Math.max(300_000, initialIntervalMs), 100, 86_400_000);
  if (maxIntervalMs < initialIntervalMs) {
    throw new ConfigError('CALLBACK_RETRY_MAX_MS must not be smaller than CALLBACK_RETRY_INITIAL_MS');
  }
  return {
    maxAttempts: int(env, 'CALLBACK_MAX_ATTEMPTS', 8, 1, 100),
    initialIntervalMs,
    maxIntervalMs,
    timeoutMs: int(env, 'CALLBACK_TIMEOUT_MS', 10_000, 100, 60_000),
  };
}

export function loadConfig(env: Env = process.env): Config {
  const databaseUrl = optional(env, 'DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  const embeddedTemporalUiPort = int(env, 'EMBEDDED_TEMPORAL_UI_PORT', 8233, 1, 65535);
  const temporalAddress = optional(env, 'TEMPORAL_ADDRESS');
  return {
    databaseUrl,
    temporalAddress,
    temporalNamespace: str(env, 'TEMPORAL_NAMESPACE', 'default'),
    temporalTaskQueue: str(env, 'TEMPORAL_TASK_QUEUE', 'punctual'),
    host: str(env, 'HOST', '127.0.0.1'),
    port: int(env, 'PORT', 3000, 0, 65535),
    dataDir: path.resolve(str(env, 'DATA_DIR', '.data')),
    apiKeys: parseApiKeys(env.API_KEYS),
    logLevel: str(env, 'LOG_LEVEL', 'info'),
    embeddedPostgresPort: int(env, 'EMBEDDED_POSTGRES_PORT', 54329, 1, 65535),
    embeddedTemporalPort: int(env, 'EMBEDDED_TEMPORAL_PORT', 7233, 1, 65535),
    embeddedTemporalUiPort,
    httpTimeoutMs: int(env, 'HTTP_TIMEOUT_MS', 10_000, 100, 60_000),
    encryptionKey: parseEncryptionKey(optional(env, 'ENCRYPTION_KEY')),
    egressAllowlist: list(env, 'EGRESS_ALLOWLIST'),
    sensitiveHeaders: list(env, 'SENSITIVE_HEADERS'),
    metricsPort: optional(env, 'METRICS_PORT') === undefined ? undefined : int(env, 'METRICS_PORT', 0, 1, 65535),
    relayPollMs: int(env, 'RELAY_POLL_MS', 500, 10, 60_000),
    timerLeadMs: int(env, 'TIMER_LEAD_MS', 1000, 0, 10_000),
    reconcileIntervalMs: int(env, 'RECONCILE_INTERVAL_MS', 60_000, 1_000, 86_400_000),
    workerAttemptSlots: int(env, 'WORKER_ATTEMPT_SLOTS', 100, 1, 10_000),
    workerCachedWorkflows: int(env, 'WORKER_CACHED_WORKFLOWS', 500, 0, 100_000),
    workerStickyTimeoutMs: int(env, 'WORKER_STICKY_TIMEOUT_MS', 10_000, 1_000, 600_000),
    temporalUiUrl:
      optional(env, 'TEMPORAL_UI_URL') ??
      (temporalAddress === undefined ? `http://localhost:${embeddedTemporalUiPort}` : undefined),
    workflowBundlePath: optional(env, 'WORKFLOW_BUNDLE_PATH'),
    rateLimit: loadRateLimit(env),
    callback: loadCallbackPolicy(env),
    schedulesPerTenant: int(env, 'SCHEDULES_PER_TENANT', 1000, 0, 1_000_000),
    flow: {
      leaseTtlMs: int(env, 'FLOW_LEASE_TTL_MS', 15_000, 1_000, 600_000),
      maxWaitMs: int(env, 'FLOW_MAX_WAIT_MS', 5_000, 100, 60_000),
      maxSlotWaitMs: int(env, 'FLOW_MAX_SLOT_WAIT_MS', 60_000, 100, 600_000),
      inProcessWaitMs: int(env, 'FLOW_IN_PROCESS_WAIT_MS', 1_000, 0, 10_000),
      hostCacheMs: int(env, 'FLOW_HOST_CACHE_MS', 5_000, 0, 600_000),
      reserveAheadMs: int(env, 'FLOW_RESERVE_AHEAD_MS', 60_000, 0, 3_600_000),
    },
  };
}
