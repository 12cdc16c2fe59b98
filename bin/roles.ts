import { DefaultLogger, NativeConnection, Runtime, Worker, type LogLevel } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { createActivities } from '../activities';
import { createHttpDispatcher } from '../activities/http';
import { buildServer } from '../api/app';
import type { Config } from '../core/config';
import { openDatabase, type Database } from '../core/db';
import { AppendNotifier } from '../core/event-store';
import type { Logger } from '../core/logger';
import { lazyTemporalClient } from '../core/temporal';
import { Relay } from '../projections/relay';
import { serviceCallsProjection } from '../projections/service-calls';
import { createWorkflowStarter } from '../projections/workflow-starter';

/** Where a role's infrastructure is, once the embedded defaults have been resolved. */
export interface Infra {
  databaseUrl: string;
  temporalAddress: string;
}

export interface RunningRole {
  name: string;
  stop(): Promise<void>;
}

export async function startApi(
  config: Config,
  infra: Infra,
  log: Logger,
): Promise<RunningRole & { fastify: FastifyInstance; url: string }> {
  const database = openDatabase(infra.databaseUrl, { max: 20, applicationName: 'punctual-api' });
  // The API needs Temporal only to report readiness: a submit is durable in Postgres alone.
  const temporal = lazyTemporalClient({ address: infra.temporalAddress, namespace: config.temporalNamespace });
  const fastify = buildServer(
    {
      db: database.db,
      notifier: new AppendNotifier(database.pool),
      async readiness() {
        const [postgres, temporalOk] = await Promise.all([
          database.pool.query('select 1').then(
            () => true,
            () => false,
          ),
          temporal.connection.workflowService.describeNamespace({ namespace: config.temporalNamespace }).then(
              () => true,
              () => false,
            ),
        ]);
        return { postgres, temporal: temporalOk };
      },
    },
    { loggerInstance: log.child({ role: 'api' }) },
  );
  const url = await fastify.listen({ host: config.host, port: config.port });
  return {
    name: 'api',
    fastify,
    url,
    async stop() {
      await fastify.close();
      await temporal.connection.close();
      await database.close();
    },
  };
}

let runtimeInstalled = false;

/** The SDK logs through pino at warn and above (it writes its own format to stderr otherwise). */
function installTemporalRuntime(log: Logger): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  const sdkLog = log.child({ component: 'temporal-sdk' });
  Runtime.install({
    logger: new DefaultLogger('WARN', (entry) => {
      const level: LogLevel = entry.level;
      const fn = level === 'ERROR' ? sdkLog.error.bind(sdkLog) : sdkLog.warn.bind(sdkLog);
      fn({ ...entry.meta }, entry.message);
    }),
  });
}

export async function startWorker(
  config: Config,
  infra: Infra,
  log: Logger,
): Promise<RunningRole> {
  installTemporalRuntime(log);
  const database: Database = openDatabase(infra.databaseUrl, { max: 20, applicationName: 'punctual-worker' });
  const connection = await NativeConnection.connect({ address: infra.temporalAddress });
  const http = createHttpDispatcher();
  const activities = createActivities({
    db: database.db,
    notifier: new AppendNotifier(database.pool),
    http,
    log: log.child({ role: 'worker' }),
  });
  const worker = await Worker.create({
    connection,
    namespace: config.temporalNamespace,
    taskQueue: config.temporalTaskQueue,
    ...(config.workflowBundlePath === undefined
      ? { workflowsPath: require.resolve('../workflows') }
      : { workflowBundle: { codePath: config.workflowBundlePath } }),
    activities,
    shutdownGraceTime: '10 seconds',
  });
  const running = worker.run();
  running.catch((err: unknown) => log.error({ err }, 'worker stopped with an error'));
  return {
    name: 'worker',
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running.catch(() => undefined);
      await connection.close();
      await http.close();
      await database.close();
    },
  };
}

export async function startRelay(config: Config, infra: Infra, log: Logger): Promise<RunningRole & { relay: Relay }> {
  const database = openDatabase(infra.databaseUrl, { max: 10, applicationName: 'punctual-relay' });
  const temporal = lazyTemporalClient({ address: infra.temporalAddress, namespace: config.temporalNamespace });
  const relayLog = log.child({ role: 'relay' });
  const relay = new Relay(
    { db: database.db, databaseUrl: infra.databaseUrl, log: relayLog, pollMs: config.relayPollMs },
    [
      serviceCallsProjection,
      createWorkflowStarter({
        client: temporal.client,
        taskQueue: config.temporalTaskQueue,
        httpTimeoutMs: config.httpTimeoutMs,
        log: relayLog,
      }),
    ],
  );
  relay.start();
  return {
    name: 'relay',
    relay,
    async stop() {
      await relay.stop();
      await temporal.connection.close();
      await database.close();
    },
  };
}
