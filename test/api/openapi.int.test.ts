import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createTestEnv, type TestEnv } from '../support/env';
import { eventually } from '../support/net';
import { loadContract, registeredRoutes, type ApiContract } from '../support/openapi';

/**
 * The OpenAPI document: it validates, it lists every route, its examples fit its schemas, and
 * real answers of every kind fit what it declares.
 */

let env: TestEnv;
let contract: ApiContract;

before(async () => {
  env = await createTestEnv();
  contract = await loadContract(env.api);
});
after(async () => {
  await env?.close();
});

const toOpenApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');
/** The documentation's own routes and the console's files are not part of the API it documents. */
const isDocsRoute = (url: string) =>
  url === '/openapi.json' ||
  url === '/docs' ||
  url.startsWith('/docs/') ||
  url === '/console' ||
  url.startsWith('/console/');
const OPERATIONS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

describe('the document', () => {
  test('is a valid OpenAPI 3.1 document', () => {
    assert.equal(contract.document.openapi, '3.1.0');
    assert.equal(contract.document.info.title, 'Punctual');
  });

  test('lists every registered route (HEAD ones too), and nothing else', () => {
    const routes = registeredRoutes(env.api).filter(([, url]) => !isDocsRoute(url));
    assert.ok(
      routes.some(([m, u]) => m === 'HEAD' && u === '/v1/service-calls'),
      'HEAD routes are registered',
    );
    assert.ok(
      routes.some(([m, u]) => m === 'POST' && u === '/v1/service-calls/:id/cancel'),
      'route tree parsed',
    );
    assert.ok(registeredRoutes(env.api).some(([, u]) => u === '/openapi.json'));
    const documented = Object.entries(contract.document.paths as Record<string, Record<string, unknown>>).flatMap(
      ([path, item]) =>
        Object.keys(item)
          .filter((k) => OPERATIONS.includes(k))
          .map((m) => `${m.toUpperCase()} ${path}`),
    );
    assert.deepEqual(routes.map(([m, u]) => `${m} ${toOpenApiPath(u)}`).sort(), [...documented].sort());
  });

  test('every operation has an id, a summary, examples, and documents 401/429 where a key is needed', () => {
    for (const [path, item] of Object.entries(contract.dereferenced.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(item)) {
        const what = `${method.toUpperCase()} ${path}`;
        assert.ok(typeof op.operationId === 'string' && typeof op.summary === 'string', what);
        const success = Object.entries(op.responses as Record<string, any>).filter(([s]) => s.startsWith('2'));
        assert.ok(success.length > 0, `${what}: no success response`);
        for (const [status, response] of success) {
          const media = Object.values((response.content ?? {}) as Record<string, any>);
          if (method === 'head' || status === '204') {
            assert.equal(media.length, 0, `${what} ${status}: a HEAD or 204 answer has no body`);
            continue;
          }
          assert.ok(media.length > 0 && media.every((m) => m.example !== undefined), `${what} ${status}: no example`);
        }
        const body = op.requestBody?.content?.['application/json'];
        if ((body?.schema?.required ?? []).length > 0)
          assert.ok(body.example !== undefined, `${what}: no request example`);
        for (const p of op.parameters ?? [])
          assert.ok(p.example !== undefined, `${what}: parameter ${p.name} has no example`);
        const open = Array.isArray(op.security) && op.security.length === 0;
        if (!open) {
          for (const status of ['401', '429']) {
            assert.ok(
              method === 'head'
                ? op.responses[status] !== undefined
                : op.responses[status]?.content?.['application/problem+json'] !== undefined,
              `${what}: ${status} not declared as problem+json`,
            );
          }
        }
      }
    }
  });

  test('every example fits its schema', () => {
    let examples = 0;
    for (const [path, item] of Object.entries(contract.dereferenced.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(item)) {
        const what = `${method.toUpperCase()} ${path}`;
        const request = op.requestBody?.content?.['application/json'];
        if (request?.example !== undefined) {
          contract.validate(request.schema, request.example, `${what} request example`);
          examples++;
        }
        for (const p of op.parameters ?? []) {
          if (p.example === undefined) continue;
          contract.validate(p.schema, p.example, `${what} parameter ${p.name} example`);
          examples++;
        }
        for (const [status, response] of Object.entries(op.responses as Record<string, any>)) {
          for (const [mediaType, media] of Object.entries((response.content ?? {}) as Record<string, any>)) {
            if (media.example === undefined) continue;
            contract.validate(media.schema, media.example, `${what} ${status} ${mediaType} example`);
            examples++;
          }
        }
      }
    }
    assert.ok(examples > 30, `only ${examples} examples`);
  });

  test('the docs page and its assets are served locally', async () => {
    const page = await env.api.inject({ method: 'GET', url: '/docs' });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers['content-type']), /text\/html/);
    for (const asset of [
      '/docs/static/swagger-ui-bundle.js',
      '/docs/static/swagger-ui.css',
      '/docs/static/swagger-initializer.js',
      '/docs/json',
    ]) {
      const r = await env.api.inject({ method: 'GET', url: asset });
      assert.equal(r.statusCode, 200, asset);
    }
    assert.doesNotMatch(page.body, /https?:\/\/(cdn|unpkg)/, 'no CDN');
  });
});

describe('real answers match the document', () => {
  const auth = () => ({ authorization: `Bearer ${env.tenants.a.key}` });
  const json = () => ({ ...auth(), 'content-type': 'application/json' });
  const inject = (
    method: 'GET' | 'POST',
    url: string,
    opts: { headers?: Record<string, string>; payload?: string | object } = {},
  ) =>
    env.api.inject({
      method,
      url,
      headers: opts.headers ?? auth(),
      ...(opts.payload === undefined ? {} : { payload: opts.payload }),
    });

  test('submit, detail, cancel, list, health: success and error answers', async () => {
    const key = `contract-${randomUUID()}`;
    const body = {
      request: { method: 'POST', url: env.target.url('/ok'), headers: { authorization: 'Bearer x' }, body: { a: 1 } },
      tags: ['contract'],
      retry: { maxAttempts: 1 },
    };
    const check = (method: string, path: string, answer: Parameters<ApiContract['check']>[2]) =>
      contract.check(method, path, answer);
    const submitted = await inject('POST', '/v1/service-calls', {
      headers: { ...json(), 'idempotency-key': key },
      payload: body,
    });
    check('post', '/v1/service-calls', submitted);
    assert.equal(submitted.statusCode, 202);
    const id = submitted.json<{ id: string }>().id;
    check(
      'post',
      '/v1/service-calls',
      await inject('POST', '/v1/service-calls', { headers: { ...json(), 'idempotency-key': key }, payload: body }),
    );
    check(
      'post',
      '/v1/service-calls',
      await inject('POST', '/v1/service-calls', {
        headers: { ...json(), 'idempotency-key': key },
        payload: { ...body, tags: [] },
      }),
    );
    check(
      'post',
      '/v1/service-calls',
      await inject('POST', '/v1/service-calls', { headers: json(), payload: { request: { method: 'GET' } } }),
    );
    check(
      'post',
      '/v1/service-calls',
      await inject('POST', '/v1/service-calls', { headers: { 'content-type': 'application/json' }, payload: body }),
    );
    check(
      'post',
      '/v1/service-calls',
      await inject('POST', '/v1/service-calls', {
        headers: { ...auth(), 'content-type': 'text/plain' },
        payload: 'hello',
      }),
    );
    check(
      'post',
      '/v1/service-calls',
      await inject('POST', '/v1/service-calls', {
        headers: json(),
        payload: JSON.stringify({
          request: { method: 'POST', url: 'https://example.com', body: 'x'.repeat(1_100_000) },
        }),
      }),
    );

    const done = await eventually('the call to finish', async () => {
      const r = await inject('GET', `/v1/service-calls/${id}`);
      return r.json<{ status: string }>().status === 'Succeeded' ? r : undefined;
    });
    check('get', '/v1/service-calls/{id}', done);
    check('get', '/v1/service-calls/{id}', await inject('GET', `/v1/service-calls/${randomUUID()}`));
    check('get', '/v1/service-calls/{id}', await inject('GET', '/v1/service-calls/not-a-uuid'));
    check('get', '/v1/service-calls/{id}', await inject('GET', `/v1/service-calls/${id}`, { headers: {} }));

    const later = await inject('POST', '/v1/service-calls', {
      headers: json(),
      payload: {
        request: { method: 'GET', url: env.target.url('/never') },
        dueAt: new Date(Date.now() + 3_600_000).toISOString(),
      },
    });
    const laterId = later.json<{ id: string }>().id;
    check('post', '/v1/service-calls/{id}/cancel', await inject('POST', `/v1/service-calls/${laterId}/cancel`));
    check('post', '/v1/service-calls/{id}/cancel', await inject('POST', `/v1/service-calls/${id}/cancel`));
    check('post', '/v1/service-calls/{id}/cancel', await inject('POST', `/v1/service-calls/${randomUUID()}/cancel`));

    await eventually('both calls listed', async () => {
      const r = await inject('GET', '/v1/service-calls?limit=200');
      return r.json<{ items: unknown[] }>().items.length >= 2 ? true : undefined;
    });
    const page = await inject('GET', '/v1/service-calls?limit=1');
    assert.equal(typeof page.json<{ nextCursor: unknown }>().nextCursor, 'string');
    check('get', '/v1/service-calls', page);
    check('get', '/v1/service-calls', await inject('GET', '/v1/service-calls?tag=contract&status=Succeeded'));
    check('get', '/v1/service-calls', await inject('GET', '/v1/service-calls?limit=0'));
    check('get', '/v1/service-calls', await inject('GET', '/v1/service-calls', { headers: {} }));

    check('get', '/healthz', await inject('GET', '/healthz', { headers: {} }));
    check('get', '/readyz', await inject('GET', '/readyz', { headers: {} }));
    if (contract.document.paths['/metrics'] !== undefined)
      check('get', '/metrics', await inject('GET', '/metrics', { headers: {} }));

    for (const expected of [
      'POST /v1/service-calls 202',
      'POST /v1/service-calls 200',
      'POST /v1/service-calls 422',
      'POST /v1/service-calls 400',
      'POST /v1/service-calls 401',
      'POST /v1/service-calls 415',
      'POST /v1/service-calls 413',
      'GET /v1/service-calls/{id} 200',
      'GET /v1/service-calls/{id} 404',
      'GET /v1/service-calls/{id} 400',
      'GET /v1/service-calls/{id} 401',
      'POST /v1/service-calls/{id}/cancel 202',
      'POST /v1/service-calls/{id}/cancel 409',
      'POST /v1/service-calls/{id}/cancel 404',
      'GET /v1/service-calls 200',
      'GET /v1/service-calls 400',
      'GET /v1/service-calls 401',
      'GET /healthz 200',
      'GET /readyz 200',
    ]) {
      assert.ok(contract.checked.has(expected), `not exercised: ${expected}`);
    }
  });
});
