import path from 'node:path';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import * as schema from '../drizzle/schema';

export type Db = NodePgDatabase<typeof schema>;
/** A database handle or an open transaction: the helpers here work with either. */
export type DbOrTx = Db | Parameters<Parameters<Db['transaction']>[0]>[0];

export interface Database {
  pool: pg.Pool;
  db: Db;
  close(): Promise<void>;
}

const MIGRATIONS_FOLDER = path.resolve(__dirname, '../../drizzle/migrations');

export function openDatabase(url: string, opts: { max?: number; applicationName?: string } = {}): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    // Fail fast instead of hanging a request when Postgres is down (the API answers 503).
    connectionTimeoutMillis: 3_000,
    idleTimeoutMillis: 30_000,
    application_name: opts.applicationName ?? 'punctual',
  });
  // An idle client losing its connection (Postgres restart) must not crash the process.
  pool.on('error', () => undefined);
  // Nor may a checked-out one: the pool listens for errors only on idle clients, and Postgres
  // announces a shutdown or crash (57P01, 57P02) to every session, including one inside a
  // transaction between two statements. With no listener that 'error' event kills the process;
  // ignored, it surfaces as a connection error on the client's next query (→ 503, or a retry),
  // and the pool drops the client when it is released.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  const db = drizzle(pool, { schema });
  return {
    pool,
    db,
    close: () => pool.end(),
  };
}

/**
 * Creates the database `name` on the server `adminUrl` points at (as a role that may CREATE
 * DATABASE) and returns its URL: tests and benchmarks each take a database of their own.
 */
export async function createDatabase(adminUrl: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a plain database name: ${name}`);
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Arbitrary constant shared by every Punctual process: only one applies migrations at a time. */
const MIGRATION_LOCK_KEY = 0x70756e63;

export async function migrateDatabase(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, application_name: 'punctual-migrate' });
  await client.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER });
  } finally {
    await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.end();
  }
}

/** The Postgres error behind `err`, unwrapping drizzle's query errors. */
export function pgErrorOf(err: unknown): (Error & { code?: string; constraint?: string }) | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const candidate: Error & { code?: unknown; constraint?: string } = current;
    if (typeof candidate.code === 'string') return candidate as Error & { code: string; constraint?: string };
    current = current.cause;
  }
  return undefined;
}

/** True for errors that mean "the database cannot be reached right now", not "bad query". */
export function isConnectionError(err: unknown): boolean {
  const code = pgErrorOf(err)?.code;
  if (code !== undefined) {
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(code)) {
      return true;
    }
    // Over a Unix socket (the embedded PostgreSQL), a stopped server has removed its socket file:
    // connecting fails with ENOENT, not ECONNREFUSED.
    if (code === 'ENOENT' && (pgErrorOf(err) as NodeJS.ErrnoException).syscall === 'connect') return true;
    // Class 08: connection exception; 57P0x: admin shutdown, crash shutdown, cannot connect now.
    if (code.startsWith('08') || code.startsWith('57P')) return true;
  }
  let current: unknown = err;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (
      /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
        current.message,
      )
    ) {
      return true;
    }
    current = current.cause;
  }
  return false;
}
