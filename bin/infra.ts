import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { generateApiKey, registerApiKey } from '../core/api-keys';
import { ConfigError, type Config } from '../core/config';
import { Keyring } from '../core/crypto';
import { openDatabase } from '../core/db';
import type { Logger } from '../core/logger';
import { startEmbeddedPostgres } from '../runtime/embedded-postgres';
import { locateTemporalCli } from '../runtime/temporal-cli';
import { startTemporalDevServer } from '../runtime/temporal-dev-server';
import type { Infra } from './roles';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/search-attributes';

export const PROJECT_ROOT = path.resolve(__dirname, '../..');

interface ResolvedInfra extends Infra {
  /** Web UI of the embedded Temporal server, when we started one. */
  temporalUiUrl: string | undefined;
  embedded: { postgres: boolean; temporal: boolean };
  stop(): Promise<void>;
}

/**
 * Uses DATABASE_URL and TEMPORAL_ADDRESS when set; otherwise starts the embedded PostgreSQL and
 * `temporal server start-dev`, both keeping their data under DATA_DIR so a restart loses nothing
 * (pending timers included).
 */
export async function resolveInfra(config: Config, log: Logger): Promise<ResolvedInfra> {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => log.warn({ err }, 'stop failed'));
  };
  try {
    mkdirSync(config.dataDir, { recursive: true });
    let databaseUrl = config.databaseUrl;
    if (databaseUrl === undefined) {
      log.info({ dataDir: config.dataDir, port: config.embeddedPostgresPort }, 'starting embedded PostgreSQL');
      const pg = await startEmbeddedPostgres({
        dataDir: path.join(config.dataDir, 'postgres'),
        port: config.embeddedPostgresPort,
        log: (msg) => log.debug({ component: 'postgres' }, msg),
      }).catch((err: unknown) => {
        throw new Error(
          `could not start the embedded PostgreSQL on port ${config.embeddedPostgresPort} ` +
            `(set EMBEDDED_POSTGRES_PORT, or DATABASE_URL to use your own server): ${String(err)}`,
        );
      });
      stops.push(() => pg.stop());
      databaseUrl = pg.url;
    }
    let temporalAddress = config.temporalAddress;
    let temporalUiUrl = config.temporalUiUrl;
    if (temporalAddress === undefined) {
      const cliPath = await locateTemporalCli({
        projectRoot: PROJECT_ROOT,
        log: (msg) => log.info({ component: 'temporal-cli' }, msg),
      });
      log.info({ cliPath, port: config.embeddedTemporalPort }, 'starting temporal server start-dev');
      const server = await startTemporalDevServer({
        cliPath,
        port: config.embeddedTemporalPort,
        uiPort: config.embeddedTemporalUiPort,
        dbFile: path.join(config.dataDir, 'temporal.db'),
        namespace: config.temporalNamespace,
        logFile: path.join(config.dataDir, 'temporal.log'),
        searchAttributes: SEARCH_ATTRIBUTE_TYPES,
        log: (msg) => log.debug({ component: 'temporal' }, msg),
      });
      stops.push(() => server.stop());
      temporalAddress = server.address;
      temporalUiUrl = server.uiUrl;
    }
    return {
      databaseUrl,
      temporalAddress,
      temporalUiUrl,
      embedded: { postgres: config.databaseUrl === undefined, temporal: config.temporalAddress === undefined },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/**
 * The key sealing request secrets: ENCRYPTION_KEY when set; in embedded mode one generated on
 * first start and kept under DATA_DIR (losing it makes stored secrets unreadable: back it up
 * with the data). Against configured infrastructure it must be given, the same to every role.
 */
export function resolveKeyring(config: Config, embedded: boolean): Keyring {
  if (config.encryptionKey !== undefined) return Keyring.fromBase64(config.encryptionKey);
  if (!embedded) {
    throw new ConfigError(
      'ENCRYPTION_KEY is required with DATABASE_URL (32 random bytes, base64: `openssl rand -base64 32`)',
    );
  }
  const file = path.join(config.dataDir, 'encryption-key');
  mkdirSync(config.dataDir, { recursive: true });
  try {
    writeFileSync(file, `${Keyring.generateBase64()}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as { code?: string }).code !== 'EEXIST') throw err;
  }
  return Keyring.fromBase64(readFileSync(file, 'utf8').trim());
}

/**
 * Registers API_KEYS; with none configured and an embedded database, makes sure tenant
 * `default` has a key, kept under DATA_DIR so every start prints the same one.
 */
export async function bootstrapApiKeys(
  config: Config,
  databaseUrl: string,
  embedded: boolean,
): Promise<{ tenantId: string; key: string } | undefined> {
  const database = openDatabase(databaseUrl, { max: 1, applicationName: 'punctual-bootstrap' });
  try {
    for (const { tenantId, key } of config.apiKeys) await registerApiKey(database.db, tenantId, key);
    if (config.apiKeys.length > 0 || !embedded) return undefined;
    const file = path.join(config.dataDir, 'dev-api-key');
    let key: string;
    if (existsSync(file)) {
      key = readFileSync(file, 'utf8').trim();
    } else {
      key = generateApiKey();
      mkdirSync(config.dataDir, { recursive: true });
      writeFileSync(file, `${key}\n`, { mode: 0o600 });
    }
    await registerApiKey(database.db, 'default', key);
    return { tenantId: 'default', key };
  } finally {
    await database.close();
  }
}
