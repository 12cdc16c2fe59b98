import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MAX_ACTIVE_SECRETS } from '../../core/signing';
import { call, createTestEnv, type Tenant, type TestEnv } from '../support/env';

/**
 * Rotation: graceSeconds applies to every secret that still signs, so one rotation with
 * graceSeconds 0 cuts a leaked secret off at once, however many rotations ago it was made; and
 * at most MAX_ACTIVE_SECRETS sign at once.
 */

let env: TestEnv;
before(async () => {
  env = await createTestEnv({ worker: false, relay: false });
});
after(async () => {
  await env?.close();
});

const secrets = async (tenant: Tenant) =>
  (await call(env, 'GET', '/v1/signing-secrets', { tenant })).body.secrets as {
    id: string;
    expiresAt: string | null;
  }[];

const rotate = (tenant: Tenant, body?: unknown) =>
  call(env, 'POST', '/v1/signing-secrets/rotate', { tenant, ...(body === undefined ? {} : { body }) });

test('graceSeconds 0 retires every active secret at once, those in an earlier grace period too', async () => {
  const tenant = env.tenants.a;
  const [first] = await secrets(tenant);
  assert.equal((await rotate(tenant, { graceSeconds: 3600 })).status, 201);
  assert.equal((await rotate(tenant, { graceSeconds: 3600 })).status, 201);
  const before = await secrets(tenant);
  assert.equal(before.length, 3);
  assert.equal(before[0]!.id, first!.id, 'the first secret is still in its grace period');

  const cut = await rotate(tenant, { graceSeconds: 0 });
  assert.equal(cut.status, 201);
  assert.equal(cut.body.secrets.length, 1, JSON.stringify(cut.body));
  assert.ok(!before.some((s) => s.id === cut.body.secrets[0].id), 'only the new secret signs');
  assert.deepEqual(await secrets(tenant), cut.body.secrets);
});

test('a shorter grace shortens earlier ones; a longer one never extends them', async () => {
  const tenant = env.tenants.b;
  await secrets(tenant);
  await rotate(tenant, { graceSeconds: 600 });
  const long = (await rotate(tenant, { graceSeconds: 7200 })).body.secrets as { expiresAt: string | null }[];
  // The secret retired with 600 s keeps its end; the one just retired got 7200 s.
  const ends = long.map((s) => (s.expiresAt === null ? null : Date.parse(s.expiresAt)));
  assert.equal(ends.length, 3);
  assert.ok(ends[0]! - Date.now() <= 600_000, 'not extended');
  assert.ok(ends[1]! - Date.now() > 3_600_000);
  assert.equal(ends[2], null);
  const short = (await rotate(tenant, { graceSeconds: 60 })).body.secrets as { expiresAt: string | null }[];
  for (const s of short.slice(0, -1)) assert.ok(Date.parse(s.expiresAt!) - Date.now() <= 60_000);
});

test(`at most ${MAX_ACTIVE_SECRETS} secrets sign: a rotation beyond retires the oldest`, async () => {
  const tenant = env.tenants.a;
  const made: string[] = [];
  for (let i = 0; i < MAX_ACTIVE_SECRETS + 3; i++) {
    // No body at all: the body is optional (default grace: one day).
    const r = await rotate(tenant);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const list = r.body.secrets as { id: string }[];
    made.push(list[list.length - 1]!.id);
    assert.ok(list.length <= MAX_ACTIVE_SECRETS);
  }
  const active = await secrets(tenant);
  assert.deepEqual(
    active.map((s) => s.id),
    made.slice(-MAX_ACTIVE_SECRETS),
    'the newest ones, oldest first',
  );
});
