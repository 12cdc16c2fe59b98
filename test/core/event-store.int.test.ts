import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import {
  AGGREGATE_TYPE,
  SCHEMA_VERSION,
  type EventEnvelope,
  type NewEvent,
  type StoredEvent,
  type Unversioned,
} from '../../core/events';
import { appendToStream, ConcurrencyError, LOG_START, readLogAfter, readStream } from '../../core/event-store';
import { sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { Relay, runConsumerOnce, type LogConsumer } from '../../projections/relay';
import { createTestEnv, type TestEnv } from '../support/env';

let env: TestEnv;
before(async () => {
  env = await createTestEnv({ worker: false, relay: false });
});
after(async () => {
  await env?.close();
});

function submitted(tenantId: string, id: string): NewEvent {
  return {
    messageId: randomUUID(),
    tenantId,
    aggregateType: AGGREGATE_TYPE,
    aggregateId: id,
    type: 'ServiceCallSubmitted',
    timestamp: new Date().toISOString(),
    correlationId: randomUUID(),
    causationId: null,
    schemaVersion: SCHEMA_VERSION,
    data: {
      request: { method: 'GET', url: 'https://example.com', headers: {} },
      secrets: null,
      dueAt: new Date().toISOString(),
      tags: [],
      idempotencyKey: null,
      retry: { maxAttempts: 1, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60000 },
      timeoutMs: 10000,
    },
  };
}

function recordingConsumer(name: string, seen: StoredEvent[]): LogConsumer {
  return {
    name,
    transactional: true,
    handle: (batch) => {
      seen.push(...batch);
      return Promise.resolve();
    },
  };
}

describe('appendToStream', () => {
  test('expected version guards the stream; a repeated message id is refused', async () => {
    const id = randomUUID();
    const stream = `t/${id}`;
    const first = submitted('t', id);
    const [stored] = await appendToStream(env.database.db, stream, 0, [first]);
    assert.equal(stored?.version, 1);
    await assert.rejects(appendToStream(env.database.db, stream, 0, [submitted('t', id)]), ConcurrencyError);
    // Too high an expected version must not leave a gap.
    await assert.rejects(appendToStream(env.database.db, stream, 5, [submitted('t', id)]), ConcurrencyError);
    await assert.rejects(appendToStream(env.database.db, stream, 1, [first]), ConcurrencyError);
    assert.equal((await readStream(env.database.db, stream)).length, 1);
  });

  test('of concurrent appends at one version exactly one wins', async () => {
    const id = randomUUID();
    const stream = `t/${id}`;
    await appendToStream(env.database.db, stream, 0, [submitted('t', id)]);
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () => appendToStream(env.database.db, stream, 1, [{ ...submitted('t', id) }])),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    assert.ok(results.every((r) => r.status === 'fulfilled' || r.reason instanceof ConcurrencyError));
    assert.deepEqual(
      (await readStream(env.database.db, stream)).map((e) => e.version),
      [1, 2],
    );
  });
});

describe('gap-free log reading', () => {
  test('an earlier transaction committing after a later one is not skipped', async () => {
    const seen: StoredEvent[] = [];
    const consumer = recordingConsumer('ordering-test', seen);
    // Skip whatever earlier tests appended.
    while ((await runConsumerOnce(env.database.db, consumer, 1000)) > 0);
    seen.length = 0;

    const slow = new pg.Client({ connectionString: env.infra.databaseUrl });
    await slow.connect();
    try {
      await slow.query('begin');
      const early = randomUUID();
      await appendToStream(drizzle(slow), `t/${early}`, 0, [submitted('t', early)]);
      // A later transaction takes a later position and commits first.
      const late = randomUUID();
      await appendToStream(env.database.db, `t/${late}`, 0, [submitted('t', late)]);

      assert.equal(await runConsumerOnce(env.database.db, consumer, 1000), 0, 'must wait for the open transaction');
      assert.equal(seen.length, 0);

      await slow.query('commit');
      assert.equal(await runConsumerOnce(env.database.db, consumer, 1000), 2);
      assert.deepEqual(
        seen.map((e) => e.aggregateId),
        [early, late],
      );
      // The naive reader would have passed `late` first and never returned to `early`.
      assert.ok(seen[0]!.globalPosition < seen[1]!.globalPosition);
    } finally {
      await slow.end();
    }
  });

  test('16 concurrent writers: every committed event is read exactly once', async () => {
    const seen: StoredEvent[] = [];
    const consumer = recordingConsumer('concurrency-test', seen);
    while ((await runConsumerOnce(env.database.db, consumer, 1000)) > 0);
    seen.length = 0;
    const written: string[] = [];
    let writing = true;
    const writers = Array.from({ length: 16 }, async () => {
      for (let i = 0; i < 25; i++) {
        const id = randomUUID();
        await env.database.db.transaction(async (tx) => {
          await appendToStream(tx, `t/${id}`, 0, [submitted('t', id)]);
          // Hold the transaction a moment so commits interleave out of position order.
          await tx.execute(sql`select pg_sleep(${Math.random() * 0.005})`);
        });
        written.push(id);
      }
    });
    const reader = (async () => {
      while (writing) await runConsumerOnce(env.database.db, consumer, 50);
    })();
    await Promise.all(writers);
    writing = false;
    await reader;
    while ((await runConsumerOnce(env.database.db, consumer, 1000)) > 0);
    const ids = seen.map((e) => e.aggregateId);
    assert.equal(new Set(ids).size, ids.length, 'no event read twice');
    assert.deepEqual([...ids].sort(), [...written].sort());
  });

  test('readLogAfter from the start returns every event in (tx, position) order', async () => {
    const all = await readLogAfter(env.database.db, LOG_START, 100_000);
    for (let i = 1; i < all.length; i++) {
      const a = all[i - 1]!;
      const b = all[i]!;
      assert.ok(BigInt(a.tx) < BigInt(b.tx) || (a.tx === b.tx && a.globalPosition < b.globalPosition));
    }
  });
});

describe('relay', () => {
  test('appends that come quicker than the coalescing window are taken in one round', async () => {
    const name = `coalesce-${randomUUID()}`;
    // Start the consumer at the end of the log as it is.
    while ((await runConsumerOnce(env.database.db, recordingConsumer(name, []), 1000)) > 0);
    const batches: number[] = [];
    const relay = new Relay(
      // No polling to speak of: only wake-ups make rounds.
      { db: env.database.db, databaseUrl: env.infra.databaseUrl, log: env.log, pollMs: 60_000, coalesceMs: 2_000 },
      [
        {
          name,
          transactional: true,
          handle: (batch) => {
            batches.push(batch.length);
            return Promise.resolve();
          },
        },
      ],
    );
    const total = () => batches.reduce((a, b) => a + b, 0);
    const until = async (n: number) => {
      for (let waited = 0; total() < n; waited += 20) {
        assert.ok(waited < 30_000, `the relay took ${total()} of ${n} events`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    relay.start();
    try {
      const tenant = `relay-${randomUUID()}`;
      const append = async () => {
        const id = randomUUID();
        await appendToStream(env.database.db, `${tenant}:${id}`, 0, [submitted(tenant, id)]);
        relay.wake();
      };
      await append();
      await until(1);
      const before = batches.length;
      // Nine appends right after a round: each wakes the relay, and none may make a round of its own.
      for (let i = 0; i < 9; i++) await append();
      await until(10);
      assert.equal(total(), 10);
      assert.ok(batches.length - before <= 2, `nine quick appends took ${batches.length - before} rounds`);
    } finally {
      await relay.stop();
    }
  });
});

describe('a second aggregate', () => {
  type ScheduleCreated = EventEnvelope<'Schedule', 'ScheduleCreated', { cron: string }>;

  test('shares the table: its events append and read back typed, with their own aggregate type', async () => {
    const id = randomUUID();
    const stream = `schedule/t/${id}`;
    const created: Unversioned<ScheduleCreated> = {
      messageId: randomUUID(),
      tenantId: 't',
      aggregateType: 'Schedule',
      aggregateId: id,
      type: 'ScheduleCreated',
      timestamp: new Date().toISOString(),
      correlationId: randomUUID(),
      causationId: null,
      schemaVersion: 1,
      data: { cron: '0 9 * * *' },
    };
    const [stored] = await appendToStream<ScheduleCreated>(env.database.db, stream, 0, [created]);
    assert.equal(stored?.version, 1);
    await assert.rejects(appendToStream<ScheduleCreated>(env.database.db, stream, 0, [created]), ConcurrencyError);
    const read = await readStream<ScheduleCreated>(env.database.db, stream);
    assert.equal(read.length, 1);
    assert.equal(read[0]?.aggregateType, 'Schedule');
    assert.deepEqual(read[0]?.data, { cron: '0 9 * * *' });
  });
});
