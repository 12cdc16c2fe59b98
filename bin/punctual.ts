// First: tracing (when configured) must patch http, undici and pg before anything loads them.
import { shutdownTracing } from './tracing';
import { loadConfig, ConfigError, type Config } from '../core/config';
import { migrateDatabase } from '../core/db';
import { createLogger, type Logger } from '../core/logger';
import { locateTemporalCli } from '../runtime/temporal-cli';
import type { Keyring } from '../core/crypto';
import { bootstrapApiKeys, PROJECT_ROOT, resolveInfra, resolveKeyring } from './infra';
import { startMetricsServer } from './metrics-server';
import { startApi, startRelay, startWorker, type RoleContext, type RunningRole } from './roles';

/**
 * One entry point, several roles: `all` (the default topology on one machine), or `api`,
 * `worker`, `relay` alone against configured infrastructure.
 */

const ROLES = ['all', 'api', 'worker', 'relay'] as const;
type Role = (typeof ROLES)[number];

const USAGE = `usage: punctual <${ROLES.join('|')}|migrate|temporal-cli>`;

function requireConfigured(config: Config, role: Role): void {
  if (role === 'all') return;
  const missing = [
    config.databaseUrl === undefined ? 'DATABASE_URL' : undefined,
    config.temporalAddress === undefined ? 'TEMPORAL_ADDRESS' : undefined,
  ].filter((v) => v !== undefined);
  if (missing.length > 0) {
    throw new ConfigError(
      `the ${role} role alone needs ${missing.join(' and ')}; run \`npm start\` for everything on embedded defaults`,
    );
  }
}

async function run(role: Role, config: Config, log: Logger): Promise<void> {
  requireConfigured(config, role);
  const infra = await resolveInfra(config, log);
  const roles: RunningRole[] = [];
  let stopping = false;
  const shutdown = async (signal: string, exitCode = 0) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    // API first (stop taking work), then the relay and the worker, then the servers.
    for (const r of [...roles].reverse()) {
      await r.stop().catch((err: unknown) => log.error({ err, role: r.name }, 'role did not stop cleanly'));
    }
    await infra.stop();
    await shutdownTracing();
    log.info('stopped');
    process.exit(exitCode);
  };
  process.on('SIGINT', (s) => void shutdown(s));
  process.on('SIGTERM', (s) => void shutdown(s));

  try {
    await migrateDatabase(infra.databaseUrl);
    let keyring: Keyring | undefined;
    const ctx: RoleContext = {
      config,
      infra,
      log,
      keyring: () => (keyring ??= resolveKeyring(config, infra.embedded.postgres)),
    };
    if (role === 'all' || role === 'worker') {
      const worker = await startWorker(ctx);
      roles.push(worker);
      ctx.localWorkerConnection = worker.connection;
    }
    if (role === 'all' || role === 'relay') roles.push(await startRelay(ctx));
    let metricsUrl: string | undefined;
    if ((role === 'worker' || role === 'relay') && config.metricsPort !== undefined) {
      const metrics = await startMetricsServer(config.host, config.metricsPort);
      roles.push(metrics);
      metricsUrl = metrics.url;
    }
    let apiUrl: string | undefined;
    if (role === 'all' || role === 'api') {
      const devKey = await bootstrapApiKeys(config, infra.databaseUrl, infra.embedded.postgres);
      const api = await startApi(ctx);
      roles.push(api);
      apiUrl = api.url;
      if (devKey !== undefined) {
        log.info({ tenantId: devKey.tenantId }, `dev API key for tenant "${devKey.tenantId}": ${devKey.key}`);
      }
    }
    const lines = [
      `Punctual is running (${role})`,
      apiUrl !== undefined ? `  API:             ${apiUrl}` : undefined,
      apiUrl !== undefined ? `  Console:         ${apiUrl}/console/` : undefined,
      apiUrl !== undefined ? `  Metrics:         ${apiUrl}/metrics` : undefined,
      metricsUrl !== undefined ? `  Metrics:         ${metricsUrl}` : undefined,
      infra.temporalUiUrl !== undefined ? `  Temporal Web UI: ${infra.temporalUiUrl}` : undefined,
      `  Temporal:        ${infra.temporalAddress} (namespace ${config.temporalNamespace})`,
      `  PostgreSQL:      ${infra.embedded.postgres ? `embedded, data in ${config.dataDir}` : 'DATABASE_URL'}`,
    ];
    process.stdout.write(`${lines.filter((l) => l !== undefined).join('\n')}\n`);
  } catch (err) {
    log.error({ err }, 'start failed');
    await shutdown('start-failure', 1);
  }
}

async function main(): Promise<void> {
  const command = process.argv[2] ?? 'all';
  if (command === 'temporal-cli') {
    const cli = await locateTemporalCli({ projectRoot: PROJECT_ROOT, log: (m) => process.stderr.write(`${m}\n`) });
    process.stdout.write(`${cli}\n`);
    return;
  }
  const config = loadConfig();
  const log = createLogger(config.logLevel);
  if (command === 'migrate') {
    if (config.databaseUrl === undefined) throw new ConfigError('migrate needs DATABASE_URL');
    await migrateDatabase(config.databaseUrl);
    return;
  }
  if (!(ROLES as readonly string[]).includes(command)) throw new ConfigError(USAGE);
  await run(command as Role, config, log);
}

main().catch((err: unknown) => {
  process.stderr.write(`punctual: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
