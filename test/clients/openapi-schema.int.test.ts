import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { createTestEnv, type TestEnv } from '../support/env';
import { apiUrl, CLIENT_ROOT } from './support';

/**
 * clients/typescript/src/schema.ts is what `npm run generate` makes from the served document: a
 * route or schema changed without regenerating fails here (run `npm start`, then
 * `npm run generate -w @punctual/client`, or pass it a saved /openapi.json).
 */

let env: TestEnv;
before(async () => {
  env = await createTestEnv({ worker: false, relay: false });
});
after(async () => {
  await env?.close();
});

interface Generator {
  generateSchemaSource(document: Record<string, unknown>): Promise<string>;
}

test('src/schema.ts is what openapi-typescript generates from the running service’s /openapi.json', async () => {
  const response = await fetch(`${apiUrl(env)}/openapi.json`);
  assert.equal(response.status, 200);
  const document = (await response.json()) as Record<string, unknown>;
  // The generator is the client's own build script (compiled by its build), not the service's code.
  const generator = (await import(path.join(CLIENT_ROOT, 'dist/scripts/generate.js'))) as Generator;
  const generated = await generator.generateSchemaSource(document);
  const committed = readFileSync(path.join(CLIENT_ROOT, 'src/schema.ts'), 'utf8');
  assert.ok(
    generated === committed,
    'clients/typescript/src/schema.ts differs from the served document: run `npm run generate -w @punctual/client`',
  );
  // Stable: generating twice from two fetches gives the same text (volatile examples are blanked).
  const again = (await (await fetch(`${apiUrl(env)}/openapi.json`)).json()) as Record<string, unknown>;
  assert.equal(await generator.generateSchemaSource(again), generated);
});
