import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WorkflowNotFoundError, type Client, type Connection } from '@temporalio/client';
import { workflowIdFor } from '../../core/ids';
import { createLogger } from '../../core/logger';
import { lazyTemporalClient } from '../../core/temporal';
import { Reconciler, RECONCILER_NAME, type PassReport } from '../../projections/reconciler';
import { runConsumerOnce, tryConsumerLock, type LogConsumer } from '../../projections/relay';
import { serviceCallsProjection } from '../../projections/service-calls';
import { createWorkflowStarter, STARTER_NAME } from '../../projections/workflow-starter';
import { call, createTestEnv, type TestEnv } from '../support/env';
import { eventually } from '../support/net';

/**
 * The reconciler on the real PostgreSQL and Temporal server, with a worker but no relay: the
 * test moves the projection and the starter itself, so it decides which calls Temporal knows.
 */

let env: TestEnv;
let temporal: { client: Client; connection: Connection };
const log = createLogger('silent');

before(async () => {
  env = await createTestEnv({ relay: false });
  temporal = lazyTemporalClient({ address: env.infra.temporalAddress, namespace: env.config.temporalNamespace });
});
after(async () => {
  await temporal?.connection.close();
  await env?.close();
});

const startTarget = () => ({
  client: temporal.client,
  taskQueue: env.config.temporalTaskQueue,
  wakeEarlyMs: 0,
  callbackPolicy: env.config.callback,
});

function reconciler(pageSize?: number): Reconciler {
  return new Reconciler({
    db: env.database.db,
    start: startTarget(),
    log,
    intervalMs: 60_000,
    ...(pageSize === undefined ? {} : { pageSize }),
  });
}

async function drain(consumer: LogConsumer): Promise<void> {
  while ((await runConsumerOnce(env.database.db, consumer, 500)) !== 0);
}

const project = () => drain(serviceCallsProjection);
const startWorkflows = () => drain(createWorkflowStarter({ ...startTarget(), log }));
/** Moves the starter's checkpoint without starting anything: as if Temporal lost what it started. */
const skipStarter = () => drain({ name: STARTER_NAME, transactional: true, handle: async () => undefined });

async function submit(path: string, dueInMs = 0): Promise<string> {
  const r = await call(env, 'POST', '/v1/service-calls', {
    body: {
      request: { method: 'POST', url: env.target.url(path), body: path },
      dueAt: new Date(Date.now() + dueInMs).toISOString(),
    },
  });
  assert.equal(r.status, 202);
  return String(r.body.id);
}

async function statusOf(id: string): Promise<string> {
  await project();
  return String((await call(env, 'GET', `/v1/service-calls/${id}`)).body.status);
}

async function untilSucceeded(id: string): Promise<void> {
  await eventually(
    'the call to succeed',
    async () => ((await statusOf(id)) === 'Succeeded' ? true : undefined),
    30_000,
  );
}

const handleOf = (id: string) => temporal.client.workflow.getHandle(workflowIdFor(env.tenants.a.id, id));

async function workflowStatus(id: string): Promise<string | undefined> {
  try {
    return (await handleOf(id).describe()).status.name;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return undefined;
    throw err;
  }
}

describe('reconciler', { concurrency: false }, () => {
  test('a finished call is untouched; a terminated workflow and a never-started one are started and run', async () => {
    // Finished before the pass: its workflow completed, its record is terminal.
    const finished = await submit('/finished');
    await project();
    await startWorkflows();
    await untilSucceeded(finished);
    const finishedRun = (await handleOf(finished).describe()).runId;

    // Started, then terminated behind Punctual's back while it waits for dueAt.
    const terminated = await submit('/terminated', 2_000);
    await project();
    await startWorkflows();
    await handleOf(terminated).terminate('test: as if lost');
    assert.equal(await workflowStatus(terminated), 'TERMINATED');

    // Recorded, projected and passed by the starter, but Temporal never had it.
    const missing = await submit('/missing');
    await project();
    await skipStarter();
    assert.equal(await workflowStatus(missing), undefined);

    const pass = await reconciler().runPass();
    assert.equal(pass.locked, false);
    assert.equal(pass.checked, 2, 'only the two unfinished calls are checked');
    assert.deepEqual(pass.counts, { live: 0, restarted: 2, awaiting_starter: 0, finished: 0, completed_unfinished: 0 });

    await untilSucceeded(terminated);
    await untilSucceeded(missing);
    assert.equal(env.target.hitsFor('/terminated').length, 1);
    assert.equal(env.target.hitsFor('/missing').length, 1);

    // The finished call: same run, one hit, and the reconciler never asked about it.
    assert.equal((await handleOf(finished).describe()).runId, finishedRun);
    assert.equal(env.target.hitsFor('/finished').length, 1);

    // Now everything is finished: another pass finds nothing to check.
    const again = await reconciler().runPass();
    assert.equal(again.checked, 0);
  });

  test('a call the starter has not reached yet is counted apart and left to the starter', async () => {
    const fresh = await submit('/fresh', 60 * 60_000);
    await project();
    const pass = await reconciler().runPass();
    assert.equal(pass.counts.awaiting_starter, 1);
    assert.equal(pass.counts.restarted, 0);
    assert.equal(await workflowStatus(fresh), undefined, 'the reconciler does not start what the starter will');
    await startWorkflows();
    const next = await reconciler().runPass();
    assert.deepEqual(next.counts, { live: 1, restarted: 0, awaiting_starter: 0, finished: 0, completed_unfinished: 0 });
    await handleOf(fresh).terminate('test: clean up');
    await call(env, 'POST', `/v1/service-calls/${fresh}/cancel`);
    await project();
  });

  test('page boundaries: a page size equal to the count, and one below it, check every call once', async () => {
    const ids = [await submit('/p1', 3_600_000), await submit('/p2', 3_600_000), await submit('/p3', 3_600_000)];
    await project();
    await startWorkflows();
    const expectLive = (pass: PassReport, pages: number) => {
      assert.equal(pass.checked, 3);
      assert.equal(pass.counts.live, 3);
      assert.equal(pass.pages, pages);
    };
    // Exactly one page of 3; the next page is empty.
    expectLive(await reconciler(3).runPass(), 2);
    // 2 + 1.
    expectLive(await reconciler(2).runPass(), 2);
    // 1 + 1 + 1 + an empty one.
    expectLive(await reconciler(1).runPass(), 4);
    for (const id of ids) assert.equal(await workflowStatus(id), 'RUNNING');
  });

  test('one relay at a time: a pass finds the lock taken and stops', async () => {
    await env.database.db.transaction(async (tx) => {
      assert.equal(await tryConsumerLock(tx, RECONCILER_NAME), true);
      // Another connection, as another relay would use.
      const pass = await reconciler().runPass();
      assert.equal(pass.locked, true);
      assert.equal(pass.checked, 0);
    });
  });
});
