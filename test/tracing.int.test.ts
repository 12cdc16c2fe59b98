import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { createTestEnv, type TestEnv } from './support/env';
import { eventually, freePort } from './support/net';

/** With OTEL_EXPORTER_OTLP_ENDPOINT set, a role received spans over OTLP/HTTP; without it, none. */

interface ExportedSpan {
  name: string;
  kind: number;
}

let env: TestEnv;
let collector: http.Server;
const received: { service: string; spans: ExportedSpan[] }[] = [];

before(async () => {
  env = await createTestEnv({ worker: false, relay: false });
  // A stand-in OTLP/HTTP collector on loopback: it records what the exporter posts as JSON.
  collector = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/traces') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          resourceSpans: {
            resource: { attributes: { key: string; value: { stringValue?: string } }[] };
            scopeSpans: { spans: ExportedSpan[] }[];
          }[];
        };
        for (const rs of body.resourceSpans) {
          const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
          received.push({ service, spans: rs.scopeSpans.flatMap((s) => s.spans) });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
});
after(async () => {
  collector?.closeAllConnections();
  await new Promise((resolve) => collector?.close(resolve));
  await env?.close();
});

test('an api process received spans for its requests and queries', async () => {
  const port = await freePort();
  const child = env.spawnRole('api', {
    PORT: String(port),
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  try {
    await eventually(
      'the api to answer',
      async () => ((await request(`http://127.0.0.1:${port}/healthz`)).statusCode === 200 ? true : undefined),
      30_000,
    );
    const submit = await request(`http://127.0.0.1:${port}/v1/service-calls`, {
      method: 'POST',
      headers: { authorization: `Bearer ${env.tenants.a.key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ request: { method: 'GET', url: env.target.url('/traced') } }),
    });
    assert.equal(submit.statusCode, 202);
    await submit.body.dump();
    const spans = await eventually(
      'spans to arrive',
      async () => {
        const all = received.filter((e) => e.service === 'punctual-api').flatMap((e) => e.spans);
        const server = all.filter((s) => s.kind === 2 && s.name.startsWith('POST'));
        const queries = all.filter((s) => s.kind === 3 && /pg|insert|select|punctual/i.test(s.name));
        return server.length > 0 && queries.length > 0 ? all : undefined;
      },
      20_000,
    );
    assert.ok(spans.length >= 2);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
});
