import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { createDatabase, migrateDatabase, openDatabase } from '../../core/db';
import type { ServiceCallState } from '../../core/service-call';
import { findServiceCall, listServiceCalls } from '../../projections/service-calls';
import { PROJECT_ROOT } from '../support/env';

/**
 * Migrations 0005/0006 move the read model from one column per field to one document per call:
 * rows written before them must read back as the very state they held.
 */

const MIGRATIONS = path.join(PROJECT_ROOT, 'drizzle/migrations');
const BEFORE_DOCUMENT = '0004_replays';

/** A migrations folder that stops at `lastTag`: the schema as a deployment before this change had it. */
function migrationsUpTo(lastTag: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'punctual-migrations-'));
  const journal = JSON.parse(readFileSync(path.join(MIGRATIONS, 'meta/_journal.json'), 'utf8')) as {
    entries: { tag: string }[];
  };
  const cut = journal.entries.findIndex((e) => e.tag === lastTag);
  assert.ok(cut >= 0, `${lastTag} is in the journal`);
  journal.entries = journal.entries.slice(0, cut + 1);
  mkdirSync(path.join(dir, 'meta'));
  writeFileSync(path.join(dir, 'meta/_journal.json'), JSON.stringify(journal));
  for (const { tag } of journal.entries)
    copyFileSync(path.join(MIGRATIONS, `${tag}.sql`), path.join(dir, `${tag}.sql`));
  return dir;
}

test('rows of the column-per-field read model read back unchanged after the document migration', async () => {
  const adminUrl = process.env.PUNCTUAL_TEST_PG_ADMIN_URL;
  assert.ok(adminUrl, 'run with npm test');
  const url = await createDatabase(adminUrl, `punctual_test_${randomBytes(5).toString('hex')}`);
  const folder = migrationsUpTo(BEFORE_DOCUMENT);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const tenantId = 'tenant-migrated';
  const finished: ServiceCallState = {
    tenantId,
    id: randomUUID(),
    status: 'Succeeded',
    request: {
      method: 'POST',
      url: 'https://api.example.com/hooks?x=1',
      headers: { 'content-type': 'application/json', authorization: '[REDACTED]' },
    },
    dueAt: '2030-01-01T09:00:00.000Z',
    tags: ['billing', 'reminders'],
    retry: { maxAttempts: 3, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60000 },
    timeoutMs: 5000,
    nextAttemptAt: null,
    createdAt: '2029-12-31T18:00:00.123Z',
    updatedAt: '2030-01-01T09:00:00.182Z',
    attempts: [
      {
        attempt: 1,
        startedAt: '2030-01-01T09:00:00.004Z',
        finishedAt: '2030-01-01T09:00:00.175Z',
        statusCode: 202,
        latencyMs: 171,
        error: null,
        responseSnippet: '{"queued":true}',
        snippetEncoding: 'utf8',
        truncated: false,
        responseHeaders: { 'content-type': 'application/json' },
      },
    ],
    result: {
      outcome: 'Succeeded',
      statusCode: 202,
      latencyMs: 171,
      error: null,
      responseSnippet: '{"queued":true}',
      snippetEncoding: 'utf8',
      truncated: false,
      responseHeaders: { 'content-type': 'application/json' },
    },
    replayOf: null,
    // Rows from before callbacks read as calls without one, and from before schedules as no run.
    callback: null,
    scheduleId: null,
    scheduledAt: null,
    flowKeys: [],
    version: 3,
  };
  const retrying: ServiceCallState = {
    ...finished,
    id: randomUUID(),
    status: 'Running',
    request: { method: 'GET', url: 'https://api.example.com/', headers: {} },
    tags: [],
    nextAttemptAt: '2030-01-01T09:00:02.000Z',
    createdAt: '2029-12-31T18:00:01.000Z',
    attempts: [{ ...finished.attempts[0]!, statusCode: 503 }],
    result: null,
    replayOf: finished.id,
    version: 4,
  };
  try {
    await migrate(drizzle(client), { migrationsFolder: folder });
    for (const s of [finished, retrying]) {
      await client.query(
        `insert into service_calls (tenant_id, id, status, method, url, headers, due_at, tags, created_at, updated_at,
           attempts, result, retry, timeout_ms, next_attempt_at, replay_of, version)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
        [
          s.tenantId,
          s.id,
          s.status,
          s.request.method,
          s.request.url,
          JSON.stringify(s.request.headers),
          s.dueAt,
          s.tags,
          s.createdAt,
          s.updatedAt,
          JSON.stringify(s.attempts),
          JSON.stringify(s.result),
          JSON.stringify(s.retry),
          s.timeoutMs,
          s.nextAttemptAt,
          s.replayOf,
          s.version,
        ],
      );
    }
  } finally {
    await client.end();
    rmSync(folder, { recursive: true, force: true });
  }

  await migrateDatabase(url);
  const database = openDatabase(url);
  try {
    assert.deepEqual(await findServiceCall(database.db, tenantId, finished.id), finished);
    assert.deepEqual(await findServiceCall(database.db, tenantId, retrying.id), retrying);
    const page = await listServiceCalls(database.db, tenantId, { statuses: [], tags: [], limit: 10 });
    assert.deepEqual(
      page.items.map((i) => i.id),
      [retrying.id, finished.id],
    );
    const { tenantId: _t, version: _v, attempts: _a, ...summary } = finished;
    assert.deepEqual(page.items[1], summary);
  } finally {
    await database.close();
  }
});
