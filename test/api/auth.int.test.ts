import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { buildServer } from '../../api/app';
import { EgressPolicy } from '../../core/egress-policy';
import { createTestEnv, type TestEnv } from '../support/env';
import { registeredRoutes } from '../support/openapi';

/** Authentication is registered once, on the scope of every /v1 route (api/app.ts, api/auth.ts). */

let env: TestEnv;
before(async () => {
  env = await createTestEnv({ worker: false, relay: false });
});
after(async () => {
  await env?.close();
});

const SOME_ID = '3f6c8b52-6a1e-4b8e-9d4f-2a7c1e5b9d10';

test('every registered /v1 route answers 401 problem+json without a key, and with an unknown one', async () => {
  const routes = registeredRoutes(env.api).filter(([, url]) => url.startsWith('/v1'));
  // The walk sees the routes there are (a broken walk would pass vacuously).
  for (const known of ['POST /v1/service-calls', 'GET /v1/service-calls/:id', 'GET /v1/signing-secrets']) {
    assert.ok(
      routes.some(([m, u]) => `${m} ${u}` === known),
      `${known} not in ${JSON.stringify(routes)}`,
    );
  }
  for (const [method, url] of routes) {
    const path = url.replace(/:[^/]+/g, SOME_ID);
    for (const headers of [{}, { authorization: 'Bearer not-a-key-of-anyone-0123456789' }]) {
      const r = await env.api.inject({ method: method as 'GET', url: path, headers });
      assert.equal(r.statusCode, 401, `${method} ${path} ${JSON.stringify(headers)}: ${r.statusCode} ${r.body}`);
      assert.match(String(r.headers['content-type']), /^application\/problem\+json/, `${method} ${path}`);
      if (method !== 'HEAD') assert.equal(r.json<{ status: number }>().status, 401);
    }
  }
});

test('a /v1 route registered outside the authenticated scope stops the app from starting', async () => {
  const app = buildServer(
    {
      config: env.config,
      databaseUrl: env.infra.databaseUrl,
      temporalAddress: env.infra.temporalAddress,
      keyring: env.keyring,
      egress: new EgressPolicy([]),
      log: env.log,
    },
    { logger: false },
  );
  void app.register(async (outside) => {
    outside.get('/v1/unprotected', async () => ({ open: true }));
  });
  await assert.rejects(async () => app.ready(), /\/v1\/unprotected is registered outside the authenticated \/v1 scope/);
  await app.close().catch(() => undefined);
});
