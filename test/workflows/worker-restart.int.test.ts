import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, test } from 'node:test';
import { readStream } from '../../core/event-store';
import { streamIdFor } from '../../core/ids';
import { call, createTestEnv, type TestEnv } from '../support/env';
import { eventually, sleep } from '../support/net';

/** A pending timer survives a worker killed with SIGKILL: the call still runs exactly once. */

let env: TestEnv;
before(async () => {
  env = await createTestEnv({ worker: false });
});
after(async () => {
  await env?.close();
});

async function statusOf(id: string): Promise<string> {
  return String((await call(env, 'GET', `/v1/service-calls/${id}`)).body.status);
}

async function workerUp(): Promise<ChildProcess> {
  const child = env.spawnRole('worker');
  // A due-now probe call finishing proves the new worker polls the task queue.
  const probe = await call(env, 'POST', '/v1/service-calls', {
    body: { request: { method: 'GET', url: env.target.url('/probe') } },
  });
  await eventually(
    'the worker to run a probe call',
    async () => ((await statusOf(String(probe.body.id))) === 'Succeeded' ? true : undefined),
    60_000,
  );
  return child;
}

test('worker killed and restarted while a timer is pending', async () => {
  const first = await workerUp();
  const dueAt = new Date(Date.now() + 3_000);
  const submitted = await call(env, 'POST', '/v1/service-calls', {
    body: { request: { method: 'POST', url: env.target.url('/timer'), body: 'once' }, dueAt: dueAt.toISOString() },
  });
  const id = String(submitted.body.id);
  await sleep(1_000);
  first.kill('SIGKILL');
  await new Promise((resolve) => first.once('exit', resolve));

  // No worker while the timer fires: nothing may run.
  await sleep(Math.max(0, dueAt.getTime() - Date.now()) + 1_000);
  assert.equal(env.target.hitsFor('/timer').length, 0);
  assert.equal(await statusOf(id), 'Scheduled');

  const second = await workerUp();
  await eventually(
    'the call to succeed on the new worker',
    async () => ((await statusOf(id)) === 'Succeeded' ? true : undefined),
    30_000,
  );
  await sleep(500);
  const hits = env.target.hitsFor('/timer');
  assert.equal(hits.length, 1);
  assert.ok(hits[0]!.at >= dueAt.getTime());
  const events = await readStream(env.database.db, streamIdFor(env.tenants.a.id, id));
  assert.deepEqual(
    events.map((e) => e.type),
    ['ServiceCallSubmitted', 'DueTimeReached', 'ServiceCallSucceeded'],
  );
  second.kill('SIGTERM');
});
