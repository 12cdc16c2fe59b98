import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { createApiKey, createTenant, listTenants, revokeApiKey, TenantError } from '../core/api-keys';
import { ConfigError, loadConfig, type Config } from '../core/config';
import { migrateDatabase, openDatabase } from '../core/db';
import { unstorableText } from '../core/text';
import { startEmbeddedPostgres } from '../runtime/embedded-postgres';
import { errorMessage, freeLoopbackPort, isPidAlive, sleep } from '../runtime/process-util';

/**
 * `npm run tenants -- <command>`: tenants and their API keys. Works on DATABASE_URL, or else on
 * the embedded PostgreSQL under DATA_DIR: the one `npm start` is running if it is up (a second
 * postmaster on the same data directory is impossible), otherwise one started just for this
 * command on a free port and stopped after it.
 */

const USAGE = `usage: npm run tenants -- <command>

  create <name>              create a tenant (lower case letters, digits, _ and -)
  keys create <tenant>       make an API key for the tenant; it is printed once, never stored
  keys revoke <key-id|key>   revoke a key, named by the id "list" shows (or the whole key)
  list                       tenants and the ids of their keys (never the keys)

Uses DATABASE_URL, else the embedded PostgreSQL under DATA_DIR (default .data).`;

export class UsageError extends Error {
  override name = 'UsageError';
}

const out = (line = '') => process.stdout.write(`${line}\n`);
const note = (line: string) => process.stderr.write(`${line}\n`);

interface Connection {
  url: string;
  /** Where the database is, for people. */
  where: string;
  close(): Promise<void>;
}

/** The postmaster serving `clusterDir` right now, from its postmaster.pid, if there is one. */
function runningPostmaster(clusterDir: string): { pid: number; port: number } | undefined {
  let lines: string[];
  try {
    lines = readFileSync(path.join(clusterDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !Number.isInteger(port) || port <= 0 || !isPidAlive(pid)) return undefined;
  try {
    const exe = path.basename(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '');
    if (exe !== 'postgres' && exe !== 'postmaster') return undefined;
  } catch {
    // No /proc (not Linux): trust the live pid; a wrong guess fails to connect and says so.
  }
  return { pid, port };
}

async function canConnect(url: string): Promise<unknown> {
  let lastError: unknown;
  // A postmaster that has just started may not accept connections for a moment.
  for (let attempt = 0; attempt < 20; attempt++) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
    try {
      await client.connect();
      await client.end();
      return undefined;
    } catch (err) {
      lastError = err;
      await client.end().catch(() => undefined);
      await sleep(250);
    }
  }
  return lastError;
}

export async function connect(config: Config): Promise<Connection> {
  if (config.databaseUrl !== undefined) {
    return { url: config.databaseUrl, where: 'DATABASE_URL', close: async () => undefined };
  }
  const clusterDir = path.join(config.dataDir, 'postgres');
  const passwordFile = path.join(config.dataDir, 'postgres-password');
  const running = runningPostmaster(clusterDir);
  if (running !== undefined) {
    if (!existsSync(passwordFile)) {
      throw new Error(`PostgreSQL is running on ${clusterDir} (pid ${running.pid}) but ${passwordFile} is missing`);
    }
    const password = readFileSync(passwordFile, 'utf8').trim();
    const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${running.port}/punctual`;
    const failure = await canConnect(url);
    if (failure !== undefined) {
      throw new Error(
        `PostgreSQL is running on ${clusterDir} (pid ${running.pid}, port ${running.port}) but does not accept ` +
          `connections: ${errorMessage(failure)}. Try again once it is up, or set DATABASE_URL.`,
      );
    }
    return { url, where: `the running embedded PostgreSQL in ${config.dataDir}`, close: async () => undefined };
  }
  const started = await startEmbeddedPostgres({ dataDir: clusterDir, port: await freeLoopbackPort() }).catch(
    (err: unknown) => {
      throw new Error(
        `could not start the embedded PostgreSQL in ${clusterDir} (or set DATABASE_URL): ${errorMessage(err)}`,
      );
    },
  );
  return { url: started.url, where: `the embedded PostgreSQL in ${config.dataDir}`, close: () => started.stop() };
}

function formatDate(date: Date | null): string {
  return date === null ? '' : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Arguments reach the database as text: refuse what PostgreSQL cannot store before connecting.
 * (A shell cannot pass a NUL, but a program calling this one may pass anything.)
 */
export function checkArguments(args: readonly string[]): void {
  for (const [i, word] of args.entries()) {
    const why = unstorableText(word);
    if (why !== undefined) throw new UsageError(`argument ${i + 1} ${why}`);
  }
}

async function run(args: string[]): Promise<void> {
  const [command, sub, arg, ...rest] = args;
  const words = [command, sub, arg].filter((w) => w !== undefined).join(' ');
  const shape =
    command === 'create' && sub !== undefined && arg === undefined
      ? 'create'
      : command === 'list' && sub === undefined
        ? 'list'
        : command === 'keys' && (sub === 'create' || sub === 'revoke') && arg !== undefined && rest.length === 0
          ? `keys ${sub}`
          : undefined;
  if (shape === undefined) throw new UsageError(words === '' ? USAGE : `unknown command "${words}"\n\n${USAGE}`);
  checkArguments(args);

  const config = loadConfig();
  const connection = await connect(config);
  note(`using ${connection.where}`);
  const database = openDatabase(connection.url, { max: 2, applicationName: 'punctual-tenants' });
  try {
    await migrateDatabase(connection.url);
    const { db } = database;
    switch (shape) {
      case 'create': {
        const name = sub as string;
        if (!(await createTenant(db, name))) throw new TenantError(`tenant "${name}" exists already`);
        out(`created tenant ${name}`);
        break;
      }
      case 'keys create': {
        const tenantId = arg as string;
        const { key, keyId } = await createApiKey(db, tenantId);
        out(`tenant: ${tenantId}`);
        out(`key id: ${keyId}`);
        out(`key:    ${key}`);
        note('This is the only time the key is shown: only its hash is stored. Revoke it by its id.');
        break;
      }
      case 'keys revoke': {
        const result = await revokeApiKey(db, arg as string);
        switch (result.outcome) {
          case 'revoked':
            out(`revoked key ${result.keyId} of tenant ${result.tenantId}`);
            break;
          case 'already-revoked':
            out(
              `key ${result.keyId} of tenant ${result.tenantId} was already revoked at ${formatDate(result.revokedAt)}`,
            );
            break;
          case 'not-found':
            throw new TenantError(`no key with id "${arg as string}" (see \`npm run tenants -- list\`)`);
          case 'ambiguous':
            throw new TenantError(
              `${result.matches.length} live keys share the id "${arg as string}" ` +
                `(tenants ${result.matches.map((m) => m.tenantId).join(', ')}); give the whole key to revoke one`,
            );
        }
        break;
      }
      case 'list': {
        const tenants = await listTenants(db);
        if (tenants.length === 0) out('no tenants');
        for (const tenant of tenants) {
          out(`${tenant.id}  (created ${formatDate(tenant.createdAt)})`);
          if (tenant.keys.length === 0) out('  no keys');
          for (const key of tenant.keys) {
            const state = key.revokedAt === null ? 'active' : `revoked ${formatDate(key.revokedAt)}`;
            out(`  ${key.keyId.padEnd(14)} created ${formatDate(key.createdAt)}  ${state}`);
          }
        }
        break;
      }
    }
  } finally {
    await database.close();
    await connection.close();
  }
}

if (require.main === module) {
  run(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      if (err instanceof UsageError) {
        note(err.message);
        process.exit(2);
      }
      note(`tenants: ${err instanceof TenantError || err instanceof ConfigError ? err.message : errorMessage(err)}`);
      process.exit(1);
    },
  );
}
