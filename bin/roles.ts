import { Client } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { request } from 'undici';
import { freeLoopbackPort } from '../runtime/process-util';
import { createActivities } from '../activities';
import { createHttpDispatcher } from '../activities/http';
import { hostLimitCache } from '../core/flow-limits';
import { collectFlowGauges } from '../core/metrics';
import { buildServer } from '../api/app';
import { apiFaultInjection } from './fault-injection';
import { ConfigError, type Config } from '../core/config';
import type { Keyring } from '../core/crypto';
import { EgressPolicy } from '../core/egress-policy';
import { createHeaderRedactor } from '../core/redact';
import { openDatabase, type Database } from '../core/db';
import { AppendNotifier } from '../core/event-store';
import type { Logger } from '../core/logger';
import { ensureSearchAttributes, lazyTemporalClient } from '../core/temporal';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/search-attributes';
import { Relay } from '../projections/relay';
import { CONSUMERS } from '../projections/consumers';
import { watchConsumerLag } from '../projections/lag';
import { Reconciler } from '../projections/reconciler';
import type { StartTarget } from '../projections/workflow-starter';

/** Where a role's infrastructure is, once the embedded defaults have been resolved. */
export interface Infra {
  databaseUrl: string;
  temporalAddress: string;
}

/** What every role shares: parsed config, where the infrastructure is, how to log and seal. */
export interface RoleContext {
  config: Config;
  infra: Infra;
  log: Logger;
  /** Resolved on first use: the relay never needs it. */
  keyring: () => Keyring;
  /**
   * The connection of a worker in this same process (the `all` role), if one runs: the relay
   * starts workflows through it with eager start, so the server hands the first workflow task
   * straight back in its answer instead of queueing it for a poll (ADR-0014).
   */
  localWorkerConnection?: NativeConnection;
}

export interface RunningRole {
  name: string;
  stop(): Promise<void>;
}

export async function startApi({
  config,
  infra,
  log,
  keyring,
}: RoleContext): Promise<RunningRole & { fastify: FastifyInstance; url: string }> {
  const apiLog = log.child({ role: 'api' });
  const faultInjection = apiFaultInjection(process.env, log);
  const fastify = buildServer(
    {
      config,
      databaseUrl: infra.databaseUrl,
      temporalAddress: infra.temporalAddress,
      keyring: keyring(),
      egress: egressPolicy(config),
      log: apiLog,
      extraMetrics: () => temporalWorkerMetrics(),
    },
    { loggerInstance: apiLog },
    faultInjection === undefined ? [] : [faultInjection],
  );
  const url = await fastify.listen({ host: config.host, port: config.port });
  return {
    name: 'api',
    fastify,
    url,
    // The app's plugins close the database and the Temporal connection.
    stop: () => fastify.close(),
  };
}

function egressPolicy(config: Config): EgressPolicy {
  try {
    return new EgressPolicy(config.egressAllowlist);
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
}

/**
 * A worker started with (or before) its Temporal server waits for it, up to a minute, rather
 * than exiting at once: containers start in any order.
 */
async function connectWithRetry(address: string, log: Logger): Promise<NativeConnection> {
  const deadline = Date.now() + 60_000;
  for (let delay = 500; ; delay = Math.min(delay * 2, 5_000)) {
    try {
      return await NativeConnection.connect({ address });
    } catch (err) {
      if (Date.now() + delay > deadline) throw err;
      log.warn(
        { address, retryInMs: delay, err: err instanceof Error ? err.message : String(err) },
        'Temporal not reachable yet',
      );
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

let runtimeMetricsUrl: string | undefined;
let runtimeInstalled = false;

/**
 * Installs the SDK runtime once per process: its logs go through pino at warn and above (it
 * writes its own format to stderr otherwise) and its metrics to a Prometheus endpoint on
 * loopback that /metrics appends to ours.
 */
async function installTemporalRuntime(log: Logger): Promise<void> {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const port = await freeLoopbackPort();
  const sdkLog = log.child({ component: 'temporal-sdk' });
  Runtime.install({
    logger: new DefaultLogger('WARN', (entry) => {
      const level: LogLevel = entry.level;
      const fn = level === 'ERROR' ? sdkLog.error.bind(sdkLog) : sdkLog.warn.bind(sdkLog);
      fn({ ...entry.meta }, entry.message);
    }),
    telemetryOptions: {
      metrics: {
        prometheus: { bindAddress: `127.0.0.1:${port}`, countersTotalSuffix: true, useSecondsForDurations: true },
      },
    },
  });
  runtimeMetricsUrl = `http://127.0.0.1:${port}/metrics`;
}

/** The in-process Temporal worker's own metrics in Prometheus text ('' when there is none). */
export async function temporalWorkerMetrics(): Promise<string> {
  if (runtimeMetricsUrl === undefined) return '';
  const response = await request(runtimeMetricsUrl);
  return response.body.text();
}

export async function startWorker({
  config,
  infra,
  log,
  keyring,
}: RoleContext): Promise<RunningRole & { connection: NativeConnection }> {
  await installTemporalRuntime(log);
  const database: Database = openDatabase(infra.databaseUrl, { max: 20, applicationName: 'punctual-worker' });
  const connection = await connectWithRetry(infra.temporalAddress, log);
  const http = createHttpDispatcher({ policy: egressPolicy(config) });
  const activities = createActivities({
    db: database.db,
    notifier: new AppendNotifier(database.pool),
    keyring: keyring(),
    redactor: createHeaderRedactor(config.sensitiveHeaders),
    http,
    log: log.child({ role: 'worker' }),
    flow: {
      leaseTtlMs: config.flow.leaseTtlMs,
      maxWaitMs: config.flow.maxWaitMs,
      maxSlotWaitMs: config.flow.maxSlotWaitMs,
      inProcessWaitMs: config.flow.inProcessWaitMs,
      hostLimits: hostLimitCache(database.db, config.flow.hostCacheMs),
    },
  });
  const gauges = collectFlowGauges(database.db);
  const worker = await Worker.create({
    connection,
    namespace: config.temporalNamespace,
    taskQueue: config.temporalTaskQueue,
    ...(config.workflowBundlePath === undefined
      ? { workflowsPath: require.resolve('../workflows') }
      : { workflowBundle: { codePath: config.workflowBundlePath } }),
    activities,
    // Attempts run as local activities, and each holds its workflow task open while it runs: the
    // workflow task slots must hold every attempt in flight plus room for the other tasks (starts,
    // fired timers, cancels), or a slow target would cap a worker at the SDK's default of 40.
    maxConcurrentLocalActivityExecutions: config.workerAttemptSlots,
    maxConcurrentWorkflowTaskExecutions: config.workerAttemptSlots + 40,
    // The SDK sizes its cache from the heap limit (about 2,300 workflows here, ~0.24 MB each,
    // measured: the process passed 700 MB with 2,000 calls waiting). A workflow that falls out is
    // replayed from its short history when its timer fires.
    maxCachedWorkflows: config.workerCachedWorkflows,
    // The SDK's default (10 s) moves a task that waited that long on this worker's sticky queue to
    // the shared queue, where the worker must fetch and replay the whole history; a burst of 2,000
    // due at once does that to its last calls (bench/README.md, "Burst experiments").
    stickyQueueScheduleToStartTimeout: config.workerStickyTimeoutMs,
    shutdownGraceTime: '10 seconds',
  });
  const running = worker.run();
  running.catch((err: unknown) => log.error({ err }, 'worker stopped with an error'));
  return {
    name: 'worker',
    connection,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => undefined);
      await connection.close();
      await http.close();
      gauges.stop();
      await database.close();
    },
  };
}

export async function startRelay({
  config,
  infra,
  log,
  localWorkerConnection,
}: RoleContext): Promise<RunningRole & { relay: Relay }> {
  const database = openDatabase(infra.databaseUrl, { max: 10, applicationName: 'punctual-relay' });
  const temporal = lazyTemporalClient({ address: infra.temporalAddress, namespace: config.temporalNamespace });
  const relayLog = log.child({ role: 'relay' });
  const startTarget: StartTarget = {
    client: temporal.client,
    // The worker's connection outlives the relay (roles stop in reverse order), and only the
    // worker closes it.
    ...(localWorkerConnection === undefined
      ? {}
      : { eagerClient: new Client({ connection: localWorkerConnection, namespace: config.temporalNamespace }) }),
    taskQueue: config.temporalTaskQueue,
    wakeEarlyMs: config.timerLeadMs,
    callbackPolicy: config.callback,
    flowReserveAheadMs: config.flow.reserveAheadMs,
  };
  const relay = new Relay(
    { db: database.db, databaseUrl: infra.databaseUrl, log: relayLog, pollMs: config.relayPollMs },
    CONSUMERS.map((c) => c.create({ log: relayLog, start: startTarget })),
  );
  relay.start();
  // The starter sets these on every workflow; a cluster without them refuses the start. Checked
  // at start and before every reconciler pass: a Temporal server that lost its data lost them too.
  let attributesAnnounced = false;
  const registerSearchAttributes = () =>
    temporal.connection
      .withDeadline(Date.now() + 10_000, () =>
        ensureSearchAttributes(temporal.connection, config.temporalNamespace, SEARCH_ATTRIBUTE_TYPES),
      )
      .then(
        (added) => {
          attributesAnnounced = false;
          if (added.length > 0) relayLog.info({ added }, 'registered search attributes');
        },
        (err: unknown) => {
          // Said once per outage, not at every pass.
          if (attributesAnnounced) return;
          attributesAnnounced = true;
          relayLog.warn({ err }, 'could not check or register search attributes (see docs/operations.md)');
        },
      );
  const reconciler = new Reconciler({
    db: database.db,
    start: startTarget,
    log: relayLog.child({ component: 'reconciler' }),
    intervalMs: config.reconcileIntervalMs,
    beforePass: registerSearchAttributes,
  });
  reconciler.start();
  const stopLagWatch = watchConsumerLag(database.db, CONSUMERS);
  return {
    name: 'relay',
    relay,
    async stop() {
      stopLagWatch();
      await reconciler.stop();
      await relay.stop();
      await temporal.connection.close();
      await database.close();
    },
  };
}
