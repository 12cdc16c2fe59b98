import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { Activities, AttemptReport } from '../../activities';
import { PROJECT_ROOT } from '../support/infra';
import { serviceCall, SERVICE_CALL_REVISION, type ServiceCallInput } from '../../workflows/service-call';

/**
 * Runs that started under an earlier revision of the workflow replay under today's code
 * (histories fetched from runs of the build before revision 1, commit 7c5f85a, kept under
 * test/workflows/histories), and a
 * run of today's revision leaves the history it promises: no patch marker and no status upsert
 * before the attempt, so the server writes visibility twice less per call (ADR-0014).
 */

const address = process.env.PUNCTUAL_TEST_TEMPORAL_ADDRESS ?? '';
const bundlePath = process.env.PUNCTUAL_TEST_WORKFLOW_BUNDLE ?? '';
const taskQueue = `revisions-${randomUUID()}`;
const HISTORIES = path.join(PROJECT_ROOT, 'test/workflows/histories');

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

for (const name of ['revision0-succeeded', 'revision0-sleeping', 'revision0-retried-failed']) {
  test(`a revision 0 history replays under the current code: ${name}`, async () => {
    // Binary protobuf as the client fetched it (the SDK's JSON reader trips over its own proto copy).
    const history = temporal.api.history.v1.History.decode(readFileSync(path.join(HISTORIES, `${name}.bin`)));
    // Throws DeterminismViolationError when today's code would issue other commands.
    await Worker.runReplayHistory({ workflowBundle: { codePath: bundlePath } }, history, `replay-${name}`);
  });
}

test("a run of today's revision (due now, never rescheduled): attempt marker, final status upsert, completion, and nothing else", async () => {
  const succeed = (): Promise<AttemptReport> => Promise.resolve({ status: 'Succeeded', retryInMs: null });
  const worker = await Worker.create({
    connection: nativeConnection,
    taskQueue,
    workflowBundle: { codePath: bundlePath },
    activities: { runAttempt: succeed } satisfies Partial<Activities>,
  });
  const input: ServiceCallInput = {
    tenantId: 'tenant-revisions',
    serviceCallId: randomUUID(),
    dueAt: new Date().toISOString(),
    timeoutMs: 1_000,
    revision: SERVICE_CALL_REVISION,
  };
  const workflowId = `revisions/${input.serviceCallId}`;
  const outcome = await worker.runUntil(
    client.workflow.execute(serviceCall, {
      taskQueue,
      workflowId,
      args: [input],
      workflowExecutionTimeout: '60 seconds',
    }),
  );
  assert.equal(outcome, 'Succeeded');
  const { events } = await client.workflow.getHandle(workflowId).fetchHistory();
  const types = (events ?? []).map((e) =>
    String(temporal.api.enums.v1.EventType[e.eventType ?? 0]).replace(/^EVENT_TYPE_/, ''),
  );
  assert.deepEqual(types, [
    'WORKFLOW_EXECUTION_STARTED',
    'WORKFLOW_TASK_SCHEDULED',
    'WORKFLOW_TASK_STARTED',
    'WORKFLOW_TASK_COMPLETED',
    'MARKER_RECORDED',
    'UPSERT_WORKFLOW_SEARCH_ATTRIBUTES',
    'WORKFLOW_EXECUTION_COMPLETED',
  ]);
});
