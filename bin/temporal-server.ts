import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freeLoopbackPort } from '../runtime/process-util';
import { startTemporalServerOnEmbeddedPostgres, TEMPORAL_SERVER_VERSION } from '../runtime/temporal-server';
import { SEARCH_ATTRIBUTE_TYPES } from '../workflows/search-attributes';
import { PROJECT_ROOT } from './infra';

/**
 * `npm run temporal:server`: the real Temporal server (built once from its Go module) on an
 * embedded PostgreSQL of its own, in the foreground until Ctrl-C, so that tests or Punctual
 * can run against the engine production uses (`PUNCTUAL_TEST_TEMPORAL_ADDRESS=… npm test`).
 */

const USAGE = `usage: npm run temporal:server -- [--port N] [--shards N] [--data-dir DIR]
  --port N       frontend gRPC port on 127.0.0.1 (default: a free port)
  --shards N     history shards (default 4; fixed once DIR holds a database)
  --data-dir DIR keep PostgreSQL and the server's config and log in DIR, reused by the next start
                 (default: a temporary folder, removed at exit)`;

function parse(argv: string[]): { port?: number; shards: number; dataDir?: string } {
  const out: { port?: number; shards: number; dataDir?: string } = { shards: 4 };
  const int = (v: string | undefined, name: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name} takes a positive integer\n${USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--port') out.port = int(argv[++i], arg);
    else if (arg === '--shards') out.shards = int(argv[++i], arg);
    else if (arg === '--data-dir') out.dataDir = path.resolve(argv[++i] ?? '');
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${String(arg)}\n${USAGE}`);
  }
  return out;
}

async function main(): Promise<void> {
  const opts = parse(process.argv.slice(2));
  const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);
  const temporary = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'punctual-temporal-server-'));
  // As root, PostgreSQL runs as the postgres user, which must be able to enter this folder.
  if (temporary) chmodSync(dataDir, 0o755);
  const cleanup = () => {
    if (temporary) rmSync(dataDir, { recursive: true, force: true });
  };
  let server: Awaited<ReturnType<typeof startTemporalServerOnEmbeddedPostgres>>;
  try {
    server = await startTemporalServerOnEmbeddedPostgres({
      projectRoot: PROJECT_ROOT,
      dataDir,
      postgresPort: await freeLoopbackPort(),
      shards: opts.shards,
      port: opts.port,
      namespace: 'default',
      searchAttributes: SEARCH_ATTRIBUTE_TYPES,
      log,
    });
  } catch (err) {
    cleanup();
    throw err;
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    log(`${signal}: stopping the Temporal server and its PostgreSQL`);
    server.stop().then(
      () => {
        cleanup();
        process.exit(0);
      },
      (err: unknown) => {
        log(`stop failed: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.stdout.write(
    [
      `Temporal server ${TEMPORAL_SERVER_VERSION} is running (${server.shards} history shards, PostgreSQL embedded)`,
      `  Address:  ${server.address} (namespace default, Punctual's search attributes registered)`,
      `  Data:     ${dataDir}${temporary ? ' (removed at exit)' : ''}`,
      `  Log:      ${server.logFile}`,
      `  Tests:    PUNCTUAL_TEST_TEMPORAL_ADDRESS=${server.address} npm test`,
      `  Punctual: TEMPORAL_ADDRESS=${server.address} npm start`,
      'Ctrl-C stops it.',
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`temporal-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
