import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { registerApiKey } from '../../core/api-keys';
import { startEmbeddedPostgres } from '../../runtime/embedded-postgres';
import { call, createTestEnv, PROJECT_ROOT, type Tenant, type TestEnv } from '../support/env';
import { eventually, freePort } from '../support/net';

/**
 * Tenants and keys: every endpoint is scoped by the key's tenant, keys are stored only as
 * hashes, the tenants CLI manages them, and a revoked key answers 401 at once.
 */

let env: TestEnv;
before(async () => {
  env = await createTestEnv();
});
after(async () => {
  await env?.close();
});

const CLI = path.join(PROJECT_ROOT, 'dist/bin/tenants.js');

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function tenantsCli(
  args: string[],
  vars: Record<string, string> = { DATABASE_URL: env.infra.databaseUrl },
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, DATABASE_URL: '', LOG_LEVEL: 'silent', ...vars }, timeout: 60_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

async function createKey(tenantId: string, vars?: Record<string, string>): Promise<Tenant & { keyId: string }> {
  const r = await tenantsCli(['keys', 'create', tenantId], vars);
  assert.equal(r.code, 0, r.stderr);
  const key = /^key:\s+(\S+)$/m.exec(r.stdout)?.[1];
  const keyId = /^key id:\s+(\S+)$/m.exec(r.stdout)?.[1];
  assert.ok(key !== undefined && keyId !== undefined, r.stdout);
  // The id shows none of the key: it is made from the key's hash.
  assert.equal(keyId, `key_${createHash('sha256').update(key).digest('hex').slice(0, 10)}`);
  return { id: tenantId, key, keyId };
}

const later = () => new Date(Date.now() + 3_600_000).toISOString();

describe('tenant isolation on every endpoint', () => {
  const a = { id: '', tag: `shared-${randomUUID()}` };
  /** B's call made with A's Idempotency-Key, body and tag. */
  let bId = '';
  const key = `order-${randomUUID()}`;
  const dueAt = later();
  const body = () => ({ request: { method: 'POST', url: env.target.url('/never') }, dueAt, tags: [a.tag] });

  before(async () => {
    const r = await call(env, 'POST', '/v1/service-calls', { body: body(), headers: { 'idempotency-key': key } });
    assert.equal(r.status, 202);
    a.id = String(r.body.id);
  });

  test('submit: the same Idempotency-Key under another tenant is another call (not a replay, not a 422)', async () => {
    const same = await call(env, 'POST', '/v1/service-calls', {
      tenant: env.tenants.b,
      body: body(),
      headers: { 'idempotency-key': key },
    });
    assert.equal(same.status, 202);
    assert.notEqual(same.body.id, a.id);
    bId = String(same.body.id);
    const different = await call(env, 'POST', '/v1/service-calls', {
      tenant: env.tenants.b,
      body: { request: { method: 'GET', url: env.target.url('/other') } },
      headers: { 'idempotency-key': `${key}-x` },
    });
    assert.equal(different.status, 202);
    const replay = await call(env, 'POST', '/v1/service-calls', { body: body(), headers: { 'idempotency-key': key } });
    assert.equal(replay.status, 200, 'the owner still replays its own key');
    assert.equal(replay.body.id, a.id);
  });

  test("detail: another tenant's id answers 404 exactly like an unknown id", async () => {
    const theirs = await call(env, 'GET', `/v1/service-calls/${a.id}`, { tenant: env.tenants.b });
    const unknownId = randomUUID();
    const unknown = await call(env, 'GET', `/v1/service-calls/${unknownId}`, { tenant: env.tenants.b });
    assert.equal(theirs.status, 404);
    assert.equal(unknown.status, 404);
    assert.deepEqual(
      { ...theirs.body, detail: String(theirs.body.detail).replace(a.id, 'ID') },
      {
        ...unknown.body,
        detail: String(unknown.body.detail).replace(unknownId, 'ID'),
      },
    );
    assert.equal(theirs.headers['content-type'], unknown.headers['content-type']);
    assert.equal((await call(env, 'GET', `/v1/service-calls/${a.id}`)).status, 200);
  });

  test("cancel: another tenant's id answers 404 and the call stays Scheduled", async () => {
    const theirs = await call(env, 'POST', `/v1/service-calls/${a.id}/cancel`, { tenant: env.tenants.b });
    assert.equal(theirs.status, 404);
    const unknown = await call(env, 'POST', `/v1/service-calls/${randomUUID()}/cancel`, { tenant: env.tenants.b });
    assert.equal(unknown.status, 404);
    assert.equal(theirs.body.title, unknown.body.title);
    assert.equal((await call(env, 'GET', `/v1/service-calls/${a.id}`)).body.status, 'Scheduled');
  });

  test("list: another tenant's calls are absent, even under a tag both tenants use", async () => {
    for (const [tenant, own] of [
      [env.tenants.a, a.id],
      [env.tenants.b, bId],
    ] as const) {
      const items = await eventually('the projection', async () => {
        const r = await call(env, 'GET', `/v1/service-calls?tag=${a.tag}&status=Scheduled`, { tenant });
        return r.body.items.length > 0 ? (r.body.items as { id: string }[]) : undefined;
      });
      assert.deepEqual(
        items.map((i) => i.id),
        [own],
      );
    }
    const all = await call(env, 'GET', '/v1/service-calls?limit=200', { tenant: env.tenants.b });
    assert.ok((all.body.items as { id: string }[]).every((i) => i.id !== a.id));
  });
});

describe('API keys', () => {
  test('the database never holds a key in clear: only its sha256 and an id made from it', async () => {
    const tenantId = `hash-${randomUUID().slice(0, 8)}`;
    assert.equal((await tenantsCli(['create', tenantId])).code, 0);
    const made = await createKey(tenantId);
    assert.equal((await call(env, 'GET', '/v1/service-calls', { tenant: made })).status, 200);
    const keys = [env.tenants.a.key, env.tenants.b.key, made.key];

    const { rows } = await env.database.pool.query<{ key_hash: string; prefix: string }>(
      'select key_hash, prefix from api_keys where tenant_id = $1',
      [tenantId],
    );
    assert.deepEqual(rows, [{ key_hash: createHash('sha256').update(made.key).digest('hex'), prefix: made.keyId }]);
    assert.ok(made.key.length > 30);

    // Every row of every table, as text: no key appears anywhere.
    const tables = await env.database.pool.query<{ schemaname: string; tablename: string }>(
      `select schemaname, tablename from pg_tables where schemaname not in ('pg_catalog', 'information_schema')`,
    );
    assert.ok(tables.rows.some((t) => t.tablename === 'api_keys'));
    for (const { schemaname, tablename } of tables.rows) {
      const { rows: dump } = await env.database.pool.query<{ text: string | null }>(
        `select string_agg(t::text, E'\\n') as text from "${schemaname}"."${tablename}" t`,
      );
      const text = dump[0]?.text ?? '';
      for (const key of keys) assert.ok(!text.includes(key), `${schemaname}.${tablename} holds a key in clear`);
    }
  });

  test('a revoked key answers 401 as soon as the revoke command returns, though it was cached', async () => {
    const tenantId = `revoke-${randomUUID().slice(0, 8)}`;
    assert.equal((await tenantsCli(['create', tenantId])).code, 0);
    const revokedByCli = await createKey(tenantId);
    const revokedBySql = await createKey(tenantId);
    for (const k of [revokedByCli, revokedBySql, revokedByCli, revokedBySql]) {
      assert.equal((await call(env, 'GET', '/v1/service-calls', { tenant: k })).status, 200);
    }

    // Behind the API's back (no notification): the verified key stays cached, for at most 30 s.
    await env.database.pool.query('update api_keys set revoked_at = now() where prefix = $1', [revokedBySql.keyId]);
    assert.equal(
      (await call(env, 'GET', '/v1/service-calls', { tenant: revokedBySql })).status,
      200,
      'served from the cache',
    );

    const r = await tenantsCli(['keys', 'revoke', revokedByCli.keyId]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`revoked key ${revokedByCli.keyId} of tenant ${tenantId}`));
    const started = Date.now();
    const denied = await eventually(
      'the revoked key to be refused',
      async () => {
        const res = await call(env, 'GET', '/v1/service-calls', { tenant: revokedByCli });
        return res.status === 401 ? res : undefined;
      },
      1_000,
      10,
    );
    assert.ok(Date.now() - started < 1_000);
    assert.match(String(denied.headers['content-type']), /problem\+json/);
    assert.equal(denied.headers['www-authenticate'], 'Bearer');
    // The revocation cleared the whole cache, so the key revoked behind its back is refused too.
    assert.equal((await call(env, 'GET', '/v1/service-calls', { tenant: revokedBySql })).status, 401);
    // Other keys keep working.
    assert.equal((await call(env, 'GET', '/v1/service-calls')).status, 200);

    const again = await tenantsCli(['keys', 'revoke', revokedByCli.keyId]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /already revoked/);
  });

  test('a bootstrap key from API_KEYS can be revoked by its whole key', async () => {
    const tenant: Tenant = { id: env.tenants.b.id, key: `bootstrap-${randomUUID()}` };
    await registerApiKey(env.database.db, tenant.id, tenant.key);
    assert.equal((await call(env, 'GET', '/v1/service-calls', { tenant })).status, 200);
    const r = await tenantsCli(['keys', 'revoke', tenant.key]);
    assert.equal(r.code, 0, r.stderr);
    await eventually(
      '401',
      async () => ((await call(env, 'GET', '/v1/service-calls', { tenant })).status === 401 ? true : undefined),
      1_000,
      10,
    );
    assert.equal((await call(env, 'GET', '/v1/service-calls', { tenant: env.tenants.b })).status, 200);
  });
});

describe('tenants CLI', () => {
  test('create, keys create, list (key ids, never keys), and its errors', async () => {
    const tenantId = `cli-${randomUUID().slice(0, 8)}`;
    const created = await tenantsCli(['create', tenantId]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, new RegExp(`created tenant ${tenantId}`));
    const key = await createKey(tenantId);
    assert.match(key.key, /^pk_[A-Za-z0-9_-]{32}$/);

    const submitted = await call(env, 'POST', '/v1/service-calls', {
      tenant: key,
      body: { request: { method: 'GET', url: env.target.url('/never') }, dueAt: later() },
    });
    assert.equal(submitted.status, 202);

    const list = await tenantsCli(['list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^${tenantId} `, 'm'));
    assert.match(list.stdout, new RegExp(`^  ${key.keyId}\\s+created \\S+\\s+active$`, 'm'));
    for (const k of [key.key, env.tenants.a.key, env.tenants.b.key]) assert.ok(!list.stdout.includes(k));

    const checks: [string[], RegExp, number][] = [
      [['create', tenantId], /exists already/, 1],
      [['create', 'Not A Name'], /must match/, 1],
      [['keys', 'create', 'no-such-tenant'], /no tenant "no-such-tenant"/, 1],
      [['keys', 'revoke', 'key_0000000000'], /no key with id/, 1],
      [['keys', 'revoke', 'pk_nothing'], /no key with id/, 1],
      [['keys', 'delete', 'x'], /unknown command/, 2],
      [[], /usage/, 2],
    ];
    for (const [args, message, code] of checks) {
      const r = await tenantsCli(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
  });

  test('a short key (API_KEYS) shows none of its characters; one stored with an old prefix gets an id too', async () => {
    const tenantId = `short-${randomUUID().slice(0, 8)}`;
    const short = randomUUID().replace(/-/g, '').slice(0, 16);
    const old = `old-${randomUUID().replace(/-/g, '').slice(0, 12)}`;
    await registerApiKey(env.database.db, tenantId, short);
    await registerApiKey(env.database.db, tenantId, old);
    // As keys were stored before key ids: the first 12 characters of the key.
    await env.database.pool.query('update api_keys set prefix = left($1, 12) where key_hash = $2', [
      old,
      createHash('sha256').update(old).digest('hex'),
    ]);
    const list = await tenantsCli(['list']);
    assert.equal(list.code, 0, list.stderr);
    for (const key of [short, old]) {
      const id = `key_${createHash('sha256').update(key).digest('hex').slice(0, 10)}`;
      assert.match(list.stdout, new RegExp(`^  ${id}\\s+created`, 'm'));
      // No run of 6 characters of the key appears: a short key keeps its entropy.
      for (let i = 0; i + 6 <= key.length; i++) assert.ok(!list.stdout.includes(key.slice(i, i + 6)), key);
    }
    const oldId = `key_${createHash('sha256').update(old).digest('hex').slice(0, 10)}`;
    const revoked = await tenantsCli(['keys', 'revoke', oldId]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal((await call(env, 'GET', '/v1/service-calls', { tenant: { id: tenantId, key: old } })).status, 401);
    assert.equal((await call(env, 'GET', '/v1/service-calls', { tenant: { id: tenantId, key: short } })).status, 200);
  });

  test('without DATABASE_URL: uses the embedded PostgreSQL that is running on DATA_DIR, else starts one', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'punctual-tenants-'));
    // As root, PostgreSQL runs as the postgres user, which must be able to enter this folder.
    chmodSync(dir, 0o755);
    const dataDir = path.join(dir, 'data');
    const vars = { DATA_DIR: dataDir };
    try {
      // As `npm start` would have it: the cluster under DATA_DIR, running, owned by a live process.
      const running = await startEmbeddedPostgres({ dataDir: path.join(dataDir, 'postgres'), port: await freePort() });
      try {
        const created = await tenantsCli(['create', 'acme'], vars);
        assert.equal(created.code, 0, created.stderr);
        assert.match(created.stderr, /using the running embedded PostgreSQL/);
        const key = await createKey('acme', vars);
        const client = new pg.Client({ connectionString: running.url });
        await client.connect();
        try {
          const { rows } = await client.query<{ prefix: string }>(
            "select prefix from api_keys where tenant_id = 'acme'",
          );
          assert.deepEqual(rows, [{ prefix: key.keyId }], 'written to the running cluster, which is still up');
        } finally {
          await client.end();
        }
      } finally {
        await running.stop();
      }
      // Nothing running now: the command starts the cluster for itself and stops it again.
      const list = await tenantsCli(['list'], vars);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stderr, /using the embedded PostgreSQL/);
      assert.match(list.stdout, /^acme /m);
      assert.ok(!existsSync(path.join(dataDir, 'postgres', 'postmaster.pid')), 'the cluster it started was stopped');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
