import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { encodeCursor } from '../../api/list-query';
import { call, createTestEnv, type TestEnv } from '../support/env';
import { eventually } from '../support/net';

/**
 * Input that once answered 500 or was accepted and then failed: each is a 400 naming the field,
 * refused by the one input guard (api/input-guard.ts) before any route's own checks. The
 * tenant's payload is the exception: it may hold any text and reaches the target as submitted.
 */

let env: TestEnv;
before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env?.close();
});

const valid = () => ({ request: { method: 'POST', url: env.target.url('/hardening') } });

function expect400(r: { status: number; headers: Record<string, unknown>; body: Record<string, any> }, field: string) {
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.match(String(r.headers['content-type']), /^application\/problem\+json/);
  const fields = (r.body.errors as { field: string }[] | undefined)?.map((e) => e.field) ?? [];
  assert.ok(fields.includes(field), `expected field ${field} in ${JSON.stringify(r.body)}`);
}

/** Sends a raw JSON text (JSON.stringify would escape what the test means to send as is). */
async function submitRaw(json: string) {
  const response = await env.api.inject({
    method: 'POST',
    url: '/v1/service-calls',
    headers: { authorization: `Bearer ${env.tenants.a.key}`, 'content-type': 'application/json' },
    payload: json,
  });
  return { status: response.statusCode, headers: response.headers, body: response.json<Record<string, any>>() };
}

describe('text PostgreSQL cannot store', () => {
  const bad = [
    ['NUL', '\u0000'],
    ['a lone high surrogate', '\ud800'],
    ['a lone low surrogate', '\udc00'],
  ] as const;

  for (const [what, char] of bad) {
    test(`${what} in a tag, the URL, a header name or value → 400 naming it`, async () => {
      const cases: [string, unknown][] = [
        ['tags.0', { ...valid(), tags: [`a${char}b`] }],
        ['request.url', { request: { method: 'GET', url: `${env.target.url('/x')}?q=${char}` } }],
        ['request.headers.X-A', { request: { ...valid().request, headers: { 'X-A': `v${char}` } } }],
        [`request.headers.X${char}`, { request: { ...valid().request, headers: { [`X${char}`]: 'v' } } }],
      ];
      for (const [field, body] of cases) {
        const r = await call(env, 'POST', '/v1/service-calls', { body });
        const escaped = field.replace(char, `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
        expect400(r, escaped);
      }
    });
  }

  test('in a list filter or cursor, and in a path parameter → 400 naming the parameter', async () => {
    for (const [query, field] of [
      ['tag=%00', 'tag'],
      ['tag=a&tag=%00', 'tag'],
      ['status=%00', 'status'],
      ['createdAfter=%00', 'createdAfter'],
      ['cursor=%00', 'cursor'],
      ['limit=%00', 'limit'],
    ] as const) {
      expect400(await call(env, 'GET', `/v1/service-calls?${query}`), field);
    }
    expect400(await call(env, 'GET', '/v1/service-calls/%00'), 'params.id');
  });

  test('in the payload, NUL is the tenant’s business: it reaches the target exactly as submitted', async () => {
    const json = { note: 'before\u0000after', nested: ['\u0000'] };
    const asJson = await call(env, 'POST', '/v1/service-calls', {
      body: { request: { method: 'POST', url: env.target.url('/nul-json'), body: json } },
    });
    assert.equal(asJson.status, 202, JSON.stringify(asJson.body));
    const asText = await call(env, 'POST', '/v1/service-calls', {
      body: { request: { method: 'POST', url: env.target.url('/nul-text'), body: 'raw\u0000bytes' } },
    });
    assert.equal(asText.status, 202, JSON.stringify(asText.body));
    const [jsonHit] = await eventually('the JSON call to arrive', async () => {
      const hits = env.target.hitsFor('/nul-json');
      return hits.length > 0 ? hits : undefined;
    });
    assert.deepEqual(JSON.parse(jsonHit!.body), json);
    const [textHit] = await eventually('the text call to arrive', async () => {
      const hits = env.target.hitsFor('/nul-text');
      return hits.length > 0 ? hits : undefined;
    });
    assert.equal(textHit!.body, 'raw\u0000bytes');
  });
});

describe('deep nesting', () => {
  test('10,000 nested arrays and 50,000 nested objects (under 1 MiB) → 400, the service keeps serving', async () => {
    const arrays = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const objects = `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`;
    for (const deep of [arrays, objects]) {
      assert.ok(deep.length < 1024 * 1024);
      expect400(
        await submitRaw(`{"request":{"method":"POST","url":"${env.target.url('/deep')}","body":${deep}}}`),
        'request.body',
      );
      // Outside the payload too, where no schema looks inside.
      expect400(await submitRaw(`{"tags":${deep},"request":{"method":"GET","url":"https://example.com/"}}`), 'tags');
      // A whole body that deep: named by its top-level field, or `body` for an array.
      expect400(await submitRaw(deep), deep.startsWith('[') ? 'body' : 'a');
    }
    const rotated = await env.api.inject({
      method: 'POST',
      url: '/v1/signing-secrets/rotate',
      headers: { authorization: `Bearer ${env.tenants.b.key}`, 'content-type': 'application/json' },
      payload: `{"graceSeconds":${arrays}}`,
    });
    assert.equal(rotated.statusCode, 400);
    assert.equal((await call(env, 'GET', '/healthz')).status, 200);
  });

  test('64 levels are fine; 65 are not', async () => {
    // The submit body itself is level 1, `request` 2, `request.body` 3.
    const nest = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
    const body = (levels: number) =>
      `{"request":{"method":"POST","url":"${env.target.url('/depth')}","body":${nest(levels)}}}`;
    assert.equal((await submitRaw(body(62))).status, 202);
    expect400(await submitRaw(body(63)), 'request.body');
  });
});

describe('values HTTP or JSON cannot carry', () => {
  test('a header value outside Latin-1 → 400; Latin-1 is fine', async () => {
    expect400(
      await call(env, 'POST', '/v1/service-calls', {
        body: { request: { ...valid().request, headers: { 'X-A': 'ключ' } } },
      }),
      'request.headers.X-A',
    );
    const latin1 = await call(env, 'POST', '/v1/service-calls', {
      body: { request: { ...valid().request, headers: { 'X-A': 'café' } } },
    });
    assert.equal(latin1.status, 202, JSON.stringify(latin1.body));
  });

  test('a number beyond double range (1e400) → 400 naming it, in the payload as anywhere', async () => {
    expect400(
      await submitRaw(`{"request":{"method":"POST","url":"${env.target.url('/n')}","body":{"n":1e400}}}`),
      'request.body.n',
    );
    expect400(
      await submitRaw(`{"request":{"method":"POST","url":"${env.target.url('/n')}"},"timeoutMs":-1e400}`),
      'timeoutMs',
    );
  });
});

describe('list filters and cursors that reach PostgreSQL', () => {
  test('a bound in year 0000 → 400 (PostgreSQL has no year 0)', async () => {
    expect400(await call(env, 'GET', '/v1/service-calls?createdAfter=0000-01-01T00:00:00Z'), 'createdAfter');
  });

  test('a crafted cursor with the right filter digest but no real instant → 400', async () => {
    for (const createdAt of ['2030-02-31T00:00:00.000000Z', '0000-01-01T00:00:00.000000Z']) {
      const cursor = encodeCursor(
        { createdAt, id: '00000000-0000-4000-8000-000000000000' },
        { statuses: [], tags: [] },
      );
      expect400(await call(env, 'GET', `/v1/service-calls?cursor=${cursor}`), 'cursor');
    }
  });
});

describe('one contract for every route', () => {
  test('an unknown query parameter → 400 naming it, on every route alike', async () => {
    for (const url of [
      '/v1/service-calls?api_key=x',
      '/v1/service-calls/00000000-0000-4000-8000-000000000000?api_key=x',
      '/v1/signing-secrets?api_key=x',
      '/healthz?api_key=x',
    ]) {
      const r = await call(env, 'GET', url);
      expect400(r, 'api_key');
      assert.match(String(r.body.detail), /is not a known parameter/);
    }
  });

  test('a known path with a method it lacks → 405 with Allow; an unknown path → 404', async () => {
    const cases: [string, string, string][] = [
      ['DELETE', '/v1/service-calls/00000000-0000-4000-8000-000000000000', 'GET, HEAD'],
      ['PUT', '/v1/service-calls', 'GET, HEAD, POST'],
      ['GET', '/v1/signing-secrets/rotate', 'POST'],
      ['OPTIONS', '/healthz', 'GET, HEAD'],
      // A fixed path beside a parametric one (/v1/service-calls/:id) is its own resource.
      ['OPTIONS', '/v1/service-calls/batch', 'POST'],
      ['OPTIONS', '/v1/service-calls/bulk/cancel', 'POST'],
      ['GET', '/v1/service-calls/batch', 'POST'],
      ['HEAD', '/v1/service-calls/batch', 'POST'],
    ];
    for (const [method, url, allow] of cases) {
      const r = await env.api.inject({ method: method as 'GET', url });
      assert.equal(r.statusCode, 405, `${method} ${url}: ${r.body}`);
      assert.equal(r.headers.allow, allow);
      assert.match(String(r.headers['content-type']), /problem\+json/);
    }
    assert.equal((await env.api.inject({ method: 'GET', url: '/v1/nothing-here' })).statusCode, 404);
  });

  test('HEAD answers like GET, without a body', async () => {
    const r = await env.api.inject({
      method: 'HEAD',
      url: '/v1/service-calls',
      headers: { authorization: `Bearer ${env.tenants.a.key}` },
    });
    assert.equal(r.statusCode, 200);
    assert.equal(r.body, '');
    assert.match(String(r.headers['content-type']), /json/);
  });
});
