import path from 'node:path';
import { ConfigError, loadConfig } from '../core/config';
import { migrateDatabase } from '../core/db';
import { createLogger } from '../core/logger';
import { REBUILDABLE_PROJECTIONS, rebuildProjection } from '../projections/rebuild';
import { embeddedPostgresUrl } from '../runtime/embedded-postgres';

/**
 * `npm run projections:rebuild [-- <projection>…]`: rebuilds read models from the event store
 * while Punctual keeps running and serving reads (projections/rebuild.ts). Connects to
 * DATABASE_URL, or to the embedded PostgreSQL that `npm start` runs under DATA_DIR.
 */

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger(config.logLevel, 'punctual-rebuild');
  const names = process.argv.slice(2);
  const unknown = names.filter((n) => !REBUILDABLE_PROJECTIONS.some((p) => p.name === n));
  if (unknown.length > 0) {
    throw new ConfigError(
      `unknown projection ${unknown.join(', ')}; known: ${REBUILDABLE_PROJECTIONS.map((p) => p.name).join(', ')}`,
    );
  }
  const databaseUrl =
    config.databaseUrl ??
    (await embeddedPostgresUrl({ dataDir: path.join(config.dataDir, 'postgres'), port: config.embeddedPostgresPort }));
  if (databaseUrl === undefined) {
    throw new ConfigError(
      `set DATABASE_URL, or run this beside \`npm start\` (no embedded PostgreSQL in ${config.dataDir})`,
    );
  }
  // The shadow copies the live table's shape: that shape must be the current one.
  await migrateDatabase(databaseUrl);
  const selected =
    names.length === 0 ? REBUILDABLE_PROJECTIONS : REBUILDABLE_PROJECTIONS.filter((p) => names.includes(p.name));
  for (const projection of selected) {
    let batches = 0;
    const result = await rebuildProjection(databaseUrl, projection, {
      log: (msg, fields) => log.info(fields ?? {}, msg),
      onProgress: (p) => {
        if (++batches % 50 === 0) log.info({ ...p }, 'rebuild: building');
      },
    });
    process.stdout.write(
      `rebuilt ${result.projection}: ${result.rows} rows from ${result.events} events in ${result.durationMs} ms ` +
        `(tables swapped in ${result.swapMs} ms)\n`,
    );
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`projections:rebuild: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
