import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { registerApiKey } from '../core/api-keys';
import { workflowIdFor } from '../core/ids';
import { lazyTemporalClient } from '../core/temporal';
import { PROJECTION_NAME } from '../projections/service-calls';
import { STARTER_NAME } from '../projections/workflow-starter';
import { call, createTestEnv, type TestEnv } from './support/env';
import { request } from 'undici';
import { startMetricsServer } from '../bin/metrics-server';
import { metric } from './support/metrics';
import { eventually, freePort } from './support/net';

/** Tracing one call through the logs, watching /metrics move, finding calls by search attribute. */

const lines: Record<string, unknown>[] = [];
let env: TestEnv;

before(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  env = await createTestEnv({ log: pino({ level: 'debug' }, sink), env: { TEMPORAL_UI_URL: 'http://ui.test:8233' } });
});
after(async () => {
  await env?.close();
});

async function finish(id: string, tenant = env.tenants.a) {
  return eventually(`call ${id} to finish`, async () => {
    const r = await call(env, 'GET', `/v1/service-calls/${id}`, { tenant });
    return ['Succeeded', 'Failed'].includes(String(r.body.status)) ? r.body : undefined;
  });
}

describe('tracing one call', () => {
  test('the correlation id and the causation chain appear at every step', async () => {
    const correlationId = `trace-${Date.now()}`;
    const submitted = await call(env, 'POST', '/v1/service-calls', {
      body: { request: { method: 'GET', url: env.target.url('/traced') } },
      headers: { 'x-correlation-id': correlationId },
    });
    assert.equal(submitted.headers['x-correlation-id'], correlationId);
    const id = String(submitted.body.id);
    const detail = await finish(id);
    assert.match(
      String(detail.links.temporalUi),
      new RegExp(
        `/namespaces/default/workflows/${encodeURIComponent(workflowIdFor(env.tenants.a.id, id)).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`,
      ),
    );

    const ours = await eventually('the projection to log the final upsert', async () => {
      const found = lines.filter((l) => l.correlationId === correlationId);
      return found.some((l) => l.msg === 'read model upserted' && l.status === 'Succeeded') ? found : undefined;
    });
    const messages = new Set(ours.map((l) => String(l.msg)));
    for (const step of [
      'incoming request',
      'service call submitted',
      'event appended',
      'outbox published: workflow started',
      'event consumed',
      'read model upserted',
      'due time reached',
      'http attempt started',
      'http attempt finished',
      'request completed',
    ]) {
      assert.ok(messages.has(step), `no log line "${step}" with the correlation id; saw ${[...messages].join(', ')}`);
    }
    for (const l of ours.filter((x) => x.serviceCallId !== undefined)) assert.equal(l.serviceCallId, id);

    // Causation: each appended event names the one before it.
    const appended = ours.filter((l) => l.msg === 'event appended');
    assert.deepEqual(
      appended.map((l) => l.eventType),
      ['ServiceCallSubmitted', 'DueTimeReached', 'ServiceCallSucceeded'],
    );
    assert.equal(appended[0]!.causationId, null);
    assert.equal(appended[1]!.causationId, appended[0]!.messageId);
    assert.equal(appended[2]!.causationId, appended[1]!.messageId);
    const consumed = ours.filter((l) => l.msg === 'event consumed');
    // The call's two consumers: the read model and the workflow starter (the schedules' consumers
    // take every event too, and may or may not have logged it yet).
    const consumers = new Set(consumed.map((l) => l.consumer));
    for (const name of [PROJECTION_NAME, STARTER_NAME]) {
      assert.ok(consumers.has(name), `${name} logged the events it took; saw ${[...consumers].join(', ')}`);
    }
  });
});

describe('metrics', () => {
  test('/metrics moves with traffic and carries the Temporal worker metrics', async () => {
    const scrape = async () => (await env.api.inject({ method: 'GET', url: '/metrics' })).body;
    const before = await scrape();
    const ok = await call(env, 'POST', '/v1/service-calls', {
      body: { request: { method: 'GET', url: env.target.url('/m-ok') } },
    });
    const bad = await call(env, 'POST', '/v1/service-calls', {
      body: { request: { method: 'GET', url: env.target.url('/status/500') } },
    });
    await finish(String(ok.body.id));
    await finish(String(bad.body.id));
    const after = await eventually(
      'the lag gauge to be exported',
      async () => {
        const text = await scrape();
        return text.includes('punctual_consumer_lag_events{consumer="service-calls"}') ? text : undefined;
      },
      10_000,
    );

    assert.equal(
      metric(after, 'punctual_calls_finished_total', { outcome: 'Succeeded' }) -
        metric(before, 'punctual_calls_finished_total', { outcome: 'Succeeded' }),
      1,
    );
    assert.equal(
      metric(after, 'punctual_calls_finished_total', { outcome: 'Failed' }) -
        metric(before, 'punctual_calls_finished_total', { outcome: 'Failed' }),
      1,
    );
    assert.equal(
      metric(after, 'punctual_http_attempt_duration_seconds_count') -
        metric(before, 'punctual_http_attempt_duration_seconds_count'),
      2,
    );
    assert.ok(metric(after, 'punctual_timer_lateness_seconds_count') >= 2);
    assert.ok(
      metric(after, 'punctual_api_request_duration_seconds_count', {
        route: '/v1/service-calls',
        method: 'POST',
        status: '2xx',
      }) >= 2,
    );
    assert.ok(metric(after, 'punctual_events_appended_total', { type: 'ServiceCallSubmitted' }) >= 2);
    assert.match(after, /^punctual_outbox_backlog_events \d+/m);
    assert.match(after, /^punctual_consumer_lag_seconds\{consumer="workflow-starter"\} [\d.e-]+/m);
    assert.match(after, /^temporal_\w+/m, 'the Temporal worker metrics are included');
    // Bounded labels: no call id or URL anywhere in the metrics.
    assert.ok(!after.includes(String(ok.body.id)) && !after.includes('/m-ok'));
  });

  test('a worker or relay run alone serves the same metrics on METRICS_PORT', async () => {
    const server = await startMetricsServer('127.0.0.1', await freePort());
    try {
      const response = await request(server.url);
      const text = await response.body.text();
      assert.equal(response.statusCode, 200);
      assert.match(text, /^punctual_calls_finished_total\{outcome="Succeeded"\} \d+/m);
      assert.match(text, /^temporal_\w+/m);
      assert.equal((await request(server.url.replace('/metrics', '/other'))).statusCode, 404);
    } finally {
      await server.stop();
    }
  });
});

describe('search attributes', () => {
  test("a visibility query finds exactly a tenant's failed calls", async () => {
    // A tenant of its own, so that no other test's calls count.
    const c = { id: `tenant-c-${Date.now()}`, key: `key-c-${Math.random().toString(36).slice(2)}-0123456789` };
    await registerApiKey(env.database.db, c.id, c.key);
    const submit = (tenant = c, path = '/status/500') =>
      call(env, 'POST', '/v1/service-calls', {
        body: { request: { method: 'GET', url: env.target.url(path) }, tags: ['sa-test'] },
        tenant,
      });
    const failedA = [await submit(), await submit()].map((r) => String(r.body.id));
    const okA = String((await submit(c, '/fine')).body.id);
    const failedB = String((await submit(env.tenants.b)).body.id);
    for (const id of [...failedA, okA]) await finish(id, c);
    await finish(failedB, env.tenants.b);

    const { client, connection } = lazyTemporalClient({
      address: env.infra.temporalAddress,
      namespace: env.config.temporalNamespace,
    });
    try {
      const query = `PunctualTenant = '${c.id}' AND PunctualStatus = 'Failed'`;
      const found = await eventually(
        'visibility to show the failed calls',
        async () => {
          const ids: string[] = [];
          for await (const wf of client.workflow.list({ query })) ids.push(wf.workflowId);
          return ids.length >= failedA.length ? ids : undefined;
        },
        20_000,
      );
      assert.deepEqual(found.sort(), failedA.map((id) => workflowIdFor(c.id, id)).sort());
      const tagged: string[] = [];
      for await (const wf of client.workflow.list({
        query: `PunctualTenant = '${c.id}' AND PunctualTags = 'sa-test'`,
      })) {
        tagged.push(wf.workflowId);
      }
      assert.equal(tagged.length, 3);
    } finally {
      await connection.close();
    }
  });
});
