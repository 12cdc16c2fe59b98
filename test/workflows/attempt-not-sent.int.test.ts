import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Activities, AttemptReport } from '../../activities';
import { SERVICE_CALL_REVISION, type ServiceCallInput } from '../../workflows/service-call';

/**
 * The workflow against the real Temporal server, with stand-in activities (the subject is the
 * workflow's handling of what they report): an attempt that fails with AttemptNotSent is run
 * again as the same attempt, never counted and never recorded as lost.
 */

const address = process.env.PUNCTUAL_TEST_TEMPORAL_ADDRESS ?? '';
const bundlePath = process.env.PUNCTUAL_TEST_WORKFLOW_BUNDLE ?? '';
const taskQueue = `attempt-not-sent-${randomUUID()}`;

let connection: Connection;
let nativeConnection: NativeConnection;
let client: Client;

before(async () => {
  assert.ok(address !== '' && bundlePath !== '', 'run through npm test (test/run.ts starts Temporal)');
  connection = await Connection.connect({ address });
  nativeConnection = await NativeConnection.connect({ address });
  client = new Client({ connection });
});
after(async () => {
  await connection?.close();
  await nativeConnection?.close();
});

interface Calls {
  attempts: number[];
  lost: number[];
}

/**
 * Stand-ins whose runAttempt throws what `failure(n)` gives for its n-th call (1-based), or
 * succeeds when it gives nothing.
 */
function standIns(calls: Calls, failure: (n: number) => Error | undefined): Partial<Activities> {
  return {
    runAttempt(ref: { attempt: number }): Promise<AttemptReport> {
      calls.attempts.push(ref.attempt);
      const err = failure(calls.attempts.length);
      if (err !== undefined) throw err;
      return Promise.resolve({ status: 'Succeeded', retryInMs: null });
    },
    recordLostAttempt(ref: { attempt: number }): Promise<AttemptReport> {
      calls.lost.push(ref.attempt);
      return Promise.resolve({ status: 'Failed', retryInMs: null });
    },
  };
}

/** Runs one due-now serviceCall workflow on a worker with these activities; its outcome. */
async function runServiceCall(activities: Partial<Activities>): Promise<unknown> {
  const worker = await Worker.create({
    connection: nativeConnection,
    taskQueue,
    workflowBundle: { codePath: bundlePath },
    activities,
  });
  const input: ServiceCallInput = {
    tenantId: 'tenant-workflow-test',
    serviceCallId: randomUUID(),
    dueAt: new Date().toISOString(),
    timeoutMs: 1_000,
    revision: SERVICE_CALL_REVISION,
  };
  return worker.runUntil(
    client.workflow.execute('serviceCall', {
      taskQueue,
      workflowId: `workflow-test/${input.serviceCallId}`,
      args: [input],
      workflowExecutionTimeout: '60 seconds',
    }),
  );
}

const failure = (type: string, message: string) => ApplicationFailure.create({ type, message, nonRetryable: true });

test('AttemptNotSent runs the same attempt again, uncounted, until it can be sent', async () => {
  const calls: Calls = { attempts: [], lost: [] };
  const outcome = await runServiceCall(
    standIns(calls, (n) => (n <= 2 ? failure('AttemptNotSent', 'database away') : undefined)),
  );
  assert.equal(outcome, 'Succeeded');
  assert.deepEqual(calls.attempts, [1, 1, 1], 'the same attempt, three times');
  assert.deepEqual(calls.lost, [], 'nothing recorded as a lost attempt');
});

test('ServiceCallNotFound from an attempt ends the workflow at once, recording nothing', async () => {
  const calls: Calls = { attempts: [], lost: [] };
  await assert.rejects(
    runServiceCall(standIns(calls, () => failure('ServiceCallNotFound', 'no events'))),
    (err: unknown) => err instanceof WorkflowFailedError && /no events/.test(String(err.cause?.message)),
  );
  assert.deepEqual(calls.attempts, [1], 'not retried');
  assert.deepEqual(calls.lost, [], 'nothing recorded as a lost attempt');
});
