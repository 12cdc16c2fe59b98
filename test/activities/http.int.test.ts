import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { call, createTestEnv, type TestEnv } from '../support/env';
import { eventually, sleep } from '../support/net';
import { TargetServer, type Hit } from '../support/target';

/**
 * The HTTP execution policy end to end: egress guard, redirects, snippets, timeouts, retries,
 * Retry-After and Standard Webhooks signatures, through the real API, worker and Temporal.
 */

let env: TestEnv;
let target: TargetServer;
let canary: http.Server;
let canaryPort: number;
let canaryConnections = 0;

before(async () => {
  // Only 127.0.0.3 is allowlisted: the canary listens on every address, so a call that slipped
  // past the guard by any other spelling of loopback would reach it.
  env = await createTestEnv({ env: { EGRESS_ALLOWLIST: '127.0.0.3' } });
  target = new TargetServer();
  await target.start('127.0.0.3');
  canary = http.createServer((_req, res) => res.end('canary'));
  canary.on('connection', () => canaryConnections++);
  await new Promise<void>((resolve) => canary.listen(0, '::', resolve));
  canaryPort = (canary.address() as AddressInfo).port;
});
after(async () => {
  canary?.closeAllConnections();
  await new Promise((resolve) => canary?.close(resolve));
  await target?.stop();
  await env?.close();
});

async function submit(body: Record<string, unknown>) {
  return call(env, 'POST', '/v1/service-calls', { body });
}

async function finished(id: string) {
  return eventually(
    `call ${id} to finish`,
    async () => {
      const r = await call(env, 'GET', `/v1/service-calls/${id}`);
      return ['Succeeded', 'Failed'].includes(String(r.body.status)) ? r.body : undefined;
    },
    30_000,
  );
}

describe('egress guard', () => {
  test('loopback in every spelling never receives a connection', async () => {
    const p = canaryPort;
    const atSubmit = [
      `http://127.0.0.1:${p}/`,
      `http://127.1:${p}/`,
      `http://2130706433:${p}/`,
      `http://0x7f000001:${p}/`,
      `http://0177.0.0.1:${p}/`,
      `http://0x7f.0.0.1:${p}/`,
      `http://127.0.0.2:${p}/`,
      `http://[::1]:${p}/`,
      `http://[::ffff:127.0.0.1]:${p}/`,
      `http://[::ffff:7f00:1]:${p}/`,
      `http://[0:0:0:0:0:ffff:7f00:1]:${p}/`,
      `http://[::127.0.0.1]:${p}/`,
      `http://[64:ff9b::7f00:1]:${p}/`,
      `http://[2002:7f00:1::]:${p}/`,
      `http://localhost:${p}/`,
      `http://LOCALHOST.:${p}/`,
      `http://a.b.localhost:${p}/`,
      `http://0.0.0.0:${p}/`,
      `http://0:${p}/`,
      `http://[::]:${p}/`,
      `http://user:pw@127.0.0.3:${p}/`,
      `http://127.0.0.1.:${p}/`,
      `http://0x7F.0x0.0x0.0x1:${p}/`,
      `http://017700000001:${p}/`,
      `http://127.000.000.001:${p}/`,
      `http://127.255.255.254:${p}/`,
      `http://[0::1]:${p}/`,
      `http://[0:0:0:0:0:0:0:1]:${p}/`,
      `http://[::ffff:7f00:0001]:${p}/`,
      `http://[::ffff:127.0.0.2]:${p}/`,
      `http://[::ffff:0.0.0.0]:${p}/`,
      `http://[64:ff9b::127.0.0.1]:${p}/`,
      `http://[2002:7f00:0001::1]:${p}/`,
      `http://0.0.0.0.:${p}/`,
      `http://LocalHost:${p}/`,
      `http://foo.LOCALHOST:${p}/`,
      `https://127.0.0.1:${p}/`,
      `https://localhost:${p}/`,
    ];
    for (const url of atSubmit) {
      const r = await submit({ request: { method: 'GET', url } });
      assert.equal(r.status, 422, `${url} → ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(r.body.errors?.[0]?.field, 'request.url');
    }
    // Names pass submit and meet the guard when dialled: `localhost`-style names resolve to loopback.
    const atConnect = [
      `http://localhost6:${p}/`,
      `http://ip6-localhost:${p}/`,
      `http://ip6-loopback:${p}/`,
      `http://localhost.localdomain:${p}/`,
    ];
    assert.ok(atSubmit.length + atConnect.length >= 40, 'the matrix covers at least 40 URLs');
    const ids: string[] = [];
    for (const url of atConnect) {
      const r = await submit({ request: { method: 'GET', url } });
      assert.equal(r.status, 202);
      ids.push(String(r.body.id));
    }
    for (const id of ids) {
      const done = await finished(id);
      assert.equal(done.status, 'Failed');
      assert.match(String(done.result.error), /egress refused|ENOTFOUND|EAI_AGAIN/);
    }
    await sleep(200);
    assert.equal(canaryConnections, 0);
  });

  test('a redirect is recorded, not followed, and nothing the tenant sent reaches the Location', async () => {
    target.route('/redirect', () => ({
      status: 302,
      headers: { location: `http://127.0.0.1:${canaryPort}/stolen`, 'set-cookie': 'tracking=1' },
    }));
    const r = await submit({
      request: {
        method: 'POST',
        url: target.url('/redirect'),
        headers: { 'X-Api-Key': 'k-123', Cookie: 'c=1' },
        body: { a: 1 },
      },
    });
    const done = await finished(String(r.body.id));
    assert.equal(done.status, 'Failed');
    assert.equal(done.result.statusCode, 302);
    assert.equal(done.result.responseHeaders.location, `http://127.0.0.1:${canaryPort}/stolen`);
    assert.equal(done.result.responseHeaders['set-cookie'], undefined, 'headers outside the allowlist are dropped');
    assert.equal(target.hitsFor('/redirect').length, 1);
    await sleep(200);
    assert.equal(canaryConnections, 0);
  });
});

describe('responses', () => {
  test('a multi-megabyte response is cut at 8 KiB without reading the rest', async () => {
    let written = 0;
    let closedEarly = false;
    const total = 64 * 1024 * 1024;
    target.route('/huge', () => ({
      status: 200,
      handle: (res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        const chunk = Buffer.alloc(64 * 1024, 'y');
        res.on('close', () => (closedEarly = written < total));
        const pump = () => {
          while (written < total) {
            written += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      },
    }));
    const r = await submit({ request: { method: 'GET', url: target.url('/huge') } });
    const done = await finished(String(r.body.id));
    assert.equal(done.status, 'Succeeded');
    assert.equal(done.result.truncated, true);
    assert.equal(done.result.responseSnippet, 'y'.repeat(8192));
    await eventually('the target to see the connection dropped', async () => (closedEarly ? true : undefined), 5_000);
    assert.ok(written < total / 4, `the target wrote ${written} bytes before we hung up`);
  });

  test('a binary body is kept as base64', async () => {
    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]);
    target.route('/binary', () => ({
      status: 200,
      body: bytes,
      headers: { 'content-type': 'application/octet-stream' },
    }));
    const r = await submit({ request: { method: 'GET', url: target.url('/binary') } });
    const done = await finished(String(r.body.id));
    assert.equal(done.result.snippetEncoding, 'base64');
    assert.equal(done.result.responseSnippet, bytes.toString('base64'));
    assert.equal(done.result.responseHeaders['content-type'], 'application/octet-stream');
  });

  test('a target slower than timeoutMs fails the attempt with a timeout', async () => {
    target.route('/slow', () => ({ status: 200, body: 'late', delayMs: 3_000 }));
    const r = await submit({ request: { method: 'GET', url: target.url('/slow') }, timeoutMs: 300 });
    assert.equal(r.status, 202);
    const done = await finished(String(r.body.id));
    assert.equal(done.status, 'Failed');
    assert.equal(done.result.statusCode, null);
    assert.match(String(done.result.error), /timeout/);
    assert.equal(done.timeoutMs, 300);
  });
});

describe('retries', () => {
  function sequence(path: string, statuses: { status: number; headers?: Record<string, string> }[]) {
    let n = 0;
    target.route(path, () => ({
      ...(statuses[Math.min(n++, statuses.length - 1)] ?? { status: 200 }),
      body: `answer ${n}`,
    }));
  }

  test('5xx twice then 2xx: three attempts in order, spaced by the backoff, one key throughout', async () => {
    sequence('/flaky', [{ status: 503 }, { status: 500 }, { status: 200 }]);
    const r = await submit({
      request: { method: 'POST', url: target.url('/flaky'), body: 'x' },
      retry: { maxAttempts: 5, initialIntervalMs: 300, backoffCoefficient: 2, maxIntervalMs: 10_000 },
    });
    const done = await finished(String(r.body.id));
    assert.equal(done.status, 'Succeeded');
    assert.deepEqual(
      done.attempts.map((a: { attempt: number }) => a.attempt),
      [1, 2, 3],
    );
    assert.deepEqual(
      done.attempts.map((a: { statusCode: number }) => a.statusCode),
      [503, 500, 200],
    );
    const hits = target.hitsFor('/flaky');
    assert.equal(hits.length, 3);
    assert.ok(hits[1]!.at - hits[0]!.at >= 300, `first gap ${hits[1]!.at - hits[0]!.at} ms`);
    assert.ok(hits[2]!.at - hits[1]!.at >= 600, `second gap ${hits[2]!.at - hits[1]!.at} ms`);
    assert.equal(new Set(hits.map((h) => h.headers['idempotency-key'])).size, 1);
    assert.equal(hits[0]!.headers['idempotency-key'], r.body.id);
  });

  test('retries stop at maxAttempts; a 4xx other than 408/429 is never retried', async () => {
    const down = await submit({
      request: { method: 'GET', url: target.url('/status/502') },
      retry: { maxAttempts: 3, initialIntervalMs: 100, backoffCoefficient: 1, maxIntervalMs: 100 },
    });
    const downDone = await finished(String(down.body.id));
    assert.equal(downDone.status, 'Failed');
    assert.equal(downDone.attempts.length, 3);
    assert.equal(target.hitsFor('/status/502').length, 3);

    const missing = await submit({
      request: { method: 'GET', url: target.url('/status/404') },
      retry: { maxAttempts: 5, initialIntervalMs: 100 },
    });
    const missingDone = await finished(String(missing.body.id));
    assert.equal(missingDone.status, 'Failed');
    assert.equal(missingDone.attempts.length, 1);
    await sleep(400);
    assert.equal(target.hitsFor('/status/404').length, 1);
  });

  test('Retry-After on 429 is honoured over a shorter backoff', async () => {
    sequence('/limited', [{ status: 429, headers: { 'retry-after': '2' } }, { status: 200 }]);
    const r = await submit({
      request: { method: 'GET', url: target.url('/limited') },
      retry: { maxAttempts: 2, initialIntervalMs: 100, maxIntervalMs: 200 },
    });
    const done = await finished(String(r.body.id));
    assert.equal(done.status, 'Succeeded');
    const hits = target.hitsFor('/limited');
    assert.equal(hits.length, 2);
    assert.ok(hits[1]!.at - hits[0]!.at >= 2_000, `gap ${hits[1]!.at - hits[0]!.at} ms`);
    assert.equal(done.attempts[0].responseHeaders['retry-after'], '2');
  });

  test('retry bounds are validated', async () => {
    for (const retry of [
      { maxAttempts: 0 },
      { maxAttempts: 21 },
      { initialIntervalMs: 5 },
      { backoffCoefficient: 0.5 },
      { initialIntervalMs: 5000, maxIntervalMs: 1000 },
      { extra: 1 },
    ]) {
      const r = await submit({ request: { method: 'GET', url: target.url('/x') }, retry });
      assert.equal(r.status, 400, JSON.stringify(retry));
    }
    for (const timeoutMs of [0, 99, 60_001, 1.5]) {
      const r = await submit({ request: { method: 'GET', url: target.url('/x') }, timeoutMs });
      assert.equal(r.status, 400, String(timeoutMs));
    }
  });
});

describe('signatures', () => {
  function verify(hit: Hit, secret: string): unknown {
    return new Webhook(secret).verify(hit.body, {
      'webhook-id': String(hit.headers['webhook-id']),
      'webhook-timestamp': String(hit.headers['webhook-timestamp']),
      'webhook-signature': String(hit.headers['webhook-signature']),
    });
  }

  test('requests are signed per Standard Webhooks; during rotation both secrets sign', async () => {
    const before = await call(env, 'GET', '/v1/signing-secrets');
    assert.equal(before.status, 200);
    assert.equal(before.body.secrets.length, 1);
    const oldSecret = String(before.body.secrets[0].secret);
    assert.match(oldSecret, /^whsec_/);

    const r1 = await submit({ request: { method: 'POST', url: target.url('/signed'), body: { n: 1 } } });
    await finished(String(r1.body.id));
    const [first] = target.hitsFor('/signed');
    assert.equal(first!.headers['webhook-id'], r1.body.id);
    assert.deepEqual(verify(first!, oldSecret), { n: 1 });

    const rotated = await call(env, 'POST', '/v1/signing-secrets/rotate', { body: { graceSeconds: 3600 } });
    assert.equal(rotated.status, 201);
    assert.equal(rotated.body.secrets.length, 2);
    const newSecret = String(rotated.body.secrets[1].secret);
    assert.notEqual(newSecret, oldSecret);
    assert.ok(rotated.body.secrets[0].expiresAt !== null);

    // A string body is sent verbatim; the library under test parses it as JSON after verifying.
    const r2 = await submit({ request: { method: 'POST', url: target.url('/signed'), body: '{"n": 2}' } });
    await finished(String(r2.body.id));
    const second = target.hitsFor('/signed')[1]!;
    assert.equal(String(second.headers['webhook-signature']).split(' ').length, 2);
    assert.equal(second.body, '{"n": 2}');
    assert.deepEqual(verify(second, oldSecret), { n: 2 });
    assert.deepEqual(verify(second, newSecret), { n: 2 });
    assert.throws(() => verify({ ...second, body: '{"n": 3}' }, newSecret), /signature/i);

    const other = await call(env, 'GET', '/v1/signing-secrets', { tenant: env.tenants.b });
    assert.notEqual(other.body.secrets[0].secret, newSecret, 'each tenant has its own secrets');
  });
});
