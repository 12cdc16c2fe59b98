import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { call, createTestEnv, type TestEnv } from '../support/env';

/**
 * The flow-limit routes and `flowKeys` on the way in (issue 16, ADR-0018): validation names the
 * field, answers are problem+json, limits are the tenant's, and `flowKeys` is part of the call
 * (and of its idempotency fingerprint) on submit, batch, replay and schedules (a schedule gives its
 * keys to every run).
 */

let env: TestEnv;
before(async () => {
  env = await createTestEnv({ worker: false, relay: false, env: { RATE_LIMIT_PER_SECOND: '0' } });
});
after(async () => {
  await env?.close();
});

type Json = Record<string, any>;

function expectProblem(
  r: { status: number; headers: Record<string, unknown>; body: Json },
  status: number,
  field?: string,
) {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
  assert.equal(r.body.status, status);
  if (field !== undefined) {
    const fields = (r.body.errors as { field: string }[] | undefined)?.map((e) => e.field) ?? [];
    assert.ok(fields.includes(field), `expected field ${field} in ${JSON.stringify(r.body)}`);
  }
}

const request = () => ({ method: 'POST', url: 'https://example.com/hook' });

describe('PUT/GET/DELETE /v1/flow-limits/{key}', () => {
  test('define, show, list, replace and delete a limit', async () => {
    const put = await call(env, 'PUT', '/v1/flow-limits/customer:42', { body: { ratePerSecond: 2.5, concurrency: 3 } });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(
      { ...put.body, createdAt: undefined, updatedAt: undefined },
      { key: 'customer:42', ratePerSecond: 2.5, burst: 3, concurrency: 3, createdAt: undefined, updatedAt: undefined },
      'burst defaults to ceil(ratePerSecond)',
    );
    const got = await call(env, 'GET', '/v1/flow-limits/customer:42');
    assert.equal(got.status, 200);
    assert.equal(got.body.inFlight, 0);
    assert.equal(got.body.waiting, 0);
    assert.deepEqual(got.body.waitingCalls, []);

    const replaced = await call(env, 'PUT', '/v1/flow-limits/customer:42', { body: { concurrency: 1 } });
    assert.equal(replaced.status, 200);
    assert.equal(replaced.body.ratePerSecond, null);
    assert.equal(replaced.body.burst, null);
    assert.equal(replaced.body.concurrency, 1);
    assert.equal(replaced.body.createdAt, put.body.createdAt);

    await call(env, 'PUT', '/v1/flow-limits/a.b_c-d', { body: { ratePerSecond: 1, burst: 5 } });
    const list = await call(env, 'GET', '/v1/flow-limits');
    assert.equal(list.status, 200);
    assert.deepEqual(
      (list.body.items as Json[]).map((l) => [
        String(l.key),
        l.burst as number | null,
        Number(l.inFlight),
        Number(l.waiting),
      ]),
      [
        ['a.b_c-d', 5, 0, 0],
        ['customer:42', null, 0, 0],
      ],
      'listed by key, with their counts',
    );

    const del = await call(env, 'DELETE', '/v1/flow-limits/customer:42');
    assert.equal(del.status, 204);
    assert.equal(del.body, '');
    expectProblem(await call(env, 'GET', '/v1/flow-limits/customer:42'), 404);
    expectProblem(await call(env, 'DELETE', '/v1/flow-limits/customer:42'), 404);
  });

  test('bad limits answer 400 naming the field', async () => {
    const put = (key: string, body: unknown) => call(env, 'PUT', `/v1/flow-limits/${key}`, { body });
    expectProblem(await put('k', {}), 400, 'ratePerSecond');
    expectProblem(await put('k', { ratePerSecond: 0 }), 400, 'ratePerSecond');
    expectProblem(await put('k', { ratePerSecond: -1 }), 400, 'ratePerSecond');
    expectProblem(await put('k', { concurrency: 0 }), 400, 'concurrency');
    expectProblem(await put('k', { concurrency: 1.5 }), 400, 'concurrency');
    expectProblem(await put('k', { ratePerSecond: 1, burst: 0 }), 400, 'burst');
    expectProblem(await put('k', { concurrency: 1, burst: 2 }), 400, 'burst');
    expectProblem(await put('k', { concurrency: 1, extra: true }), 400);
    expectProblem(await put('bad%20key', { concurrency: 1 }), 400, 'params.key');
    expectProblem(await put('x'.repeat(129), { concurrency: 1 }), 400, 'params.key');
    expectProblem(await call(env, 'GET', '/v1/flow-limits/bad!key'), 400, 'params.key');
    assert.equal((await put('x'.repeat(128), { concurrency: 1 })).status, 200);
  });

  test("another tenant's key is another limit: 404 to the other tenant, separate values", async () => {
    const a = env.tenants.a;
    const b = env.tenants.b;
    await call(env, 'PUT', '/v1/flow-limits/shared', { tenant: a, body: { concurrency: 7 } });
    expectProblem(await call(env, 'GET', '/v1/flow-limits/shared', { tenant: b }), 404);
    expectProblem(await call(env, 'DELETE', '/v1/flow-limits/shared', { tenant: b }), 404);
    assert.ok(
      !((await call(env, 'GET', '/v1/flow-limits', { tenant: b })).body.items as Json[]).some(
        (l) => l.key === 'shared',
      ),
    );
    await call(env, 'PUT', '/v1/flow-limits/shared', { tenant: b, body: { ratePerSecond: 1 } });
    assert.equal((await call(env, 'GET', '/v1/flow-limits/shared', { tenant: a })).body.concurrency, 7);
    assert.equal((await call(env, 'GET', '/v1/flow-limits/shared', { tenant: b })).body.concurrency, null);
  });

  test('the routes need a key', async () => {
    const r = await env.api.inject({ method: 'GET', url: '/v1/flow-limits' });
    assert.equal(r.statusCode, 401);
  });
});

describe('flowKeys on submit, batch and replay', () => {
  test('submit keeps flowKeys on the call; bad ones answer 400 naming the field', async () => {
    const r = await call(env, 'POST', '/v1/service-calls', {
      body: { request: request(), flowKeys: ['customer:1', 'account.9'] },
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const detail = await call(env, 'GET', `/v1/service-calls/${r.body.id}`);
    assert.deepEqual(detail.body.flowKeys, ['customer:1', 'account.9']);
    assert.deepEqual(detail.body.waitingFor, []);
    const post = (flowKeys: unknown) =>
      call(env, 'POST', '/v1/service-calls', { body: { request: request(), flowKeys } });
    expectProblem(await post(['a', 'b', 'c', 'd']), 400, 'flowKeys');
    expectProblem(await post(['bad key']), 400, 'flowKeys.0');
    expectProblem(await post(['x'.repeat(129)]), 400, 'flowKeys.0');
    expectProblem(await post(['']), 400, 'flowKeys.0');
    expectProblem(await post(['a', 'a']), 400, 'flowKeys');
    expectProblem(await post('a'), 400, 'flowKeys');
  });

  test('flowKeys are part of the idempotency fingerprint', async () => {
    const key = randomUUID();
    const submit = (flowKeys?: string[]) =>
      call(env, 'POST', '/v1/service-calls', {
        headers: { 'idempotency-key': key },
        body: { request: request(), ...(flowKeys === undefined ? {} : { flowKeys }) },
      });
    const first = await submit(['k1']);
    assert.equal(first.status, 202);
    const again = await submit(['k1']);
    assert.equal(again.body.id, first.body.id);
    assert.equal((await submit(['k2'])).status, 422);
    assert.equal((await submit()).status, 422);
  });

  test('batch items take flowKeys, each validated', async () => {
    const ok = await call(env, 'POST', '/v1/service-calls/batch', {
      body: { items: [{ request: request(), flowKeys: ['b1'] }, { request: request() }] },
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const [withKeys, without] = ok.body.items as Json[];
    assert.deepEqual((await call(env, 'GET', `/v1/service-calls/${withKeys!.id}`)).body.flowKeys, ['b1']);
    assert.deepEqual((await call(env, 'GET', `/v1/service-calls/${without!.id}`)).body.flowKeys, []);
    const bad = await call(env, 'POST', '/v1/service-calls/batch', {
      body: { items: [{ request: request(), flowKeys: ['no spaces'] }] },
    });
    // A batch answers 200 with each item's own outcome.
    assert.equal(bad.status, 200, JSON.stringify(bad.body));
    const [item] = bad.body.items as Json[];
    assert.equal(item!.status, 400);
    assert.ok(
      (item!.error.errors as Json[]).some((e) => e.field === 'flowKeys.0'),
      JSON.stringify(item),
    );
  });

  test("replay keeps the original's flowKeys unless given; they are part of its fingerprint", async () => {
    const original = await call(env, 'POST', '/v1/service-calls', {
      body: { request: request(), flowKeys: ['orig'], dueAt: new Date(Date.now() + 3_600_000).toISOString() },
    });
    assert.equal(original.status, 202, JSON.stringify(original.body));
    const id = String(original.body.id);
    // Only a finished call is replayed: a cancelled one is.
    const cancelled = await call(env, 'POST', `/v1/service-calls/${id}/cancel`);
    assert.ok([200, 202].includes(cancelled.status), JSON.stringify(cancelled.body));
    const kept = await call(env, 'POST', `/v1/service-calls/${id}/replay`, { body: {} });
    assert.equal(kept.status, 202, JSON.stringify(kept.body));
    assert.deepEqual((await call(env, 'GET', `/v1/service-calls/${kept.body.id}`)).body.flowKeys, ['orig']);
    const key = randomUUID();
    const replay = (flowKeys: string[]) =>
      call(env, 'POST', `/v1/service-calls/${id}/replay`, { headers: { 'idempotency-key': key }, body: { flowKeys } });
    const changed = await replay(['other']);
    assert.equal(changed.status, 202, JSON.stringify(changed.body));
    assert.deepEqual((await call(env, 'GET', `/v1/service-calls/${changed.body.id}`)).body.flowKeys, ['other']);
    assert.equal((await replay(['other'])).body.id, changed.body.id);
    assert.equal((await replay(['third'])).status, 422);
    expectProblem(
      await call(env, 'POST', `/v1/service-calls/${id}/replay`, { body: { flowKeys: ['a', 'b', 'c', 'd'] } }),
      400,
      'flowKeys',
    );
  });
});

describe('flowKeys on schedules', () => {
  const patch = (id: string, body: unknown) =>
    env.api.inject({
      method: 'PATCH',
      url: `/v1/schedules/${id}`,
      headers: { authorization: `Bearer ${env.tenants.a.key}` },
      payload: body as object,
    });
  /** One run now; its call's flowKeys. A millisecond apart, so that each trigger is its own run. */
  const runKeys = async (id: string) => {
    await new Promise((resolve) => setTimeout(resolve, 2));
    const r = await call(env, 'POST', `/v1/schedules/${id}/trigger`);
    assert.equal(r.status, 202, JSON.stringify(r.body));
    return (await call(env, 'GET', `/v1/service-calls/${r.body.serviceCallId}`)).body.flowKeys as string[];
  };
  const schedule = (extra: Json) => ({ intervalSeconds: 3600, paused: true, request: request(), ...extra });

  test('kept with the template, shown, given to every run, changed by PATCH ([] clears them)', async () => {
    const created = await call(env, 'POST', '/v1/schedules', {
      body: schedule({ flowKeys: ['customer:1', 'acct.2'] }),
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = String(created.body.id);
    assert.deepEqual(created.body.flowKeys, ['customer:1', 'acct.2']);
    assert.deepEqual((await call(env, 'GET', `/v1/schedules/${id}`)).body.flowKeys, ['customer:1', 'acct.2']);
    assert.deepEqual(await runKeys(id), ['customer:1', 'acct.2']);

    const changed = await patch(id, { flowKeys: ['k3'] });
    assert.equal(changed.statusCode, 200, changed.body);
    assert.deepEqual(changed.json<Json>().flowKeys, ['k3']);
    assert.deepEqual(await runKeys(id), ['k3']);
    // A PATCH of another field keeps them.
    assert.deepEqual((await patch(id, { tags: ['t'] })).json<Json>().flowKeys, ['k3']);
    assert.deepEqual((await patch(id, { request: request() })).json<Json>().flowKeys, ['k3']);
    const cleared = await patch(id, { flowKeys: [] });
    assert.deepEqual(cleared.json<Json>().flowKeys, []);
    assert.deepEqual(await runKeys(id), []);

    const none = await call(env, 'POST', '/v1/schedules', { body: schedule({}) });
    assert.deepEqual(none.body.flowKeys, []);
  });

  test('bad flowKeys answer 400 naming the field, on create and PATCH, as on submit', async () => {
    const create = (flowKeys: unknown) => call(env, 'POST', '/v1/schedules', { body: schedule({ flowKeys }) });
    expectProblem(await create(['a', 'b', 'c', 'd']), 400, 'flowKeys');
    expectProblem(await create(['bad key']), 400, 'flowKeys.0');
    expectProblem(await create(['a', 'a']), 400, 'flowKeys');
    const ok = await call(env, 'POST', '/v1/schedules', { body: schedule({}) });
    const r = await patch(String(ok.body.id), { flowKeys: ['x'.repeat(129)] });
    expectProblem({ status: r.statusCode, headers: r.headers, body: r.json<Json>() }, 400, 'flowKeys.0');
  });

  test('flowKeys are part of the create idempotency fingerprint', async () => {
    const key = randomUUID();
    const create = (flowKeys?: string[]) =>
      call(env, 'POST', '/v1/schedules', {
        headers: { 'idempotency-key': key },
        body: schedule(flowKeys === undefined ? {} : { flowKeys }),
      });
    const first = await create(['k1']);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const again = await create(['k1']);
    assert.equal(again.status, 200);
    assert.equal(again.body.id, first.body.id);
    expectProblem(await create(['k2']), 422);
    expectProblem(await create(), 422);
  });
});
