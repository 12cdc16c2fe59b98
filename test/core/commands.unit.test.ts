import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fingerprintOf, UNFINGERPRINTED_FIELDS, type SubmitCommand } from '../../core/commands';
import { Keyring } from '../../core/crypto';

test('the fingerprint ignores key order and instant spelling, not content', () => {
  const base: SubmitCommand = {
    tenantId: 't',
    idempotencyKey: 'k',
    request: {
      method: 'POST',
      url: 'https://e.com',
      headers: { a: '1', b: '2' },
      body: { kind: 'json', json: { x: 1, y: [1, 2] } },
    },
    dueAt: '2030-01-01T00:00:00Z',
    tags: ['a'],
    retry: { maxAttempts: 1, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60000 },
    timeoutMs: 10000,
    correlationId: 'c',
  };
  const keyring = new Keyring(Buffer.alloc(32, 7));
  const reordered: SubmitCommand = {
    ...base,
    correlationId: 'other',
    request: {
      body: { kind: 'json', json: { y: [1, 2], x: 1 } },
      headers: { b: '2', a: '1' },
      url: 'https://e.com',
      method: 'POST',
    },
    dueAt: '2030-01-01T01:00:00+01:00',
  };
  assert.equal(fingerprintOf(base, keyring), fingerprintOf(reordered, keyring));
  assert.notEqual(fingerprintOf(base, keyring), fingerprintOf({ ...base, tags: ['b'] }, keyring));
  assert.notEqual(fingerprintOf(base, keyring), fingerprintOf({ ...base, dueAt: undefined }, keyring));
  assert.notEqual(
    fingerprintOf(base, keyring),
    fingerprintOf(
      { ...base, request: { ...base.request, body: { kind: 'json', json: { x: 1, y: [2, 1] } } } },
      keyring,
    ),
  );
  // Keyed: another key gives another fingerprint for the same request.
  assert.notEqual(fingerprintOf(base, keyring), fingerprintOf(base, new Keyring(Buffer.alloc(32, 8))));
});

const sample: SubmitCommand = {
  tenantId: 't',
  idempotencyKey: 'k',
  request: {
    method: 'POST',
    url: 'https://e.com',
    headers: { b: '2', a: '1' },
    body: { kind: 'json', json: { y: [1, 2], x: 1 } },
  },
  dueAt: '2030-01-01T00:00:00Z',
  tags: ['a'],
  retry: { maxAttempts: 1, initialIntervalMs: 1000, backoffCoefficient: 2, maxIntervalMs: 60000 },
  timeoutMs: 10000,
  correlationId: 'c',
};

test('the fingerprint hashes the same bytes as the stored idempotency records were made with', () => {
  const keyring = new Keyring(Buffer.alloc(32, 7));
  // What fingerprintOf hashed before it covered the whole command (its fields listed by hand).
  const before =
    '{"dueAt":1893456000000,' +
    '"request":{"body":{"json":{"x":1,"y":[1,2]},"kind":"json"},"headers":{"a":"1","b":"2"},"method":"POST","url":"https://e.com"},' +
    '"retry":{"backoffCoefficient":2,"initialIntervalMs":1000,"maxAttempts":1,"maxIntervalMs":60000},' +
    '"tags":["a"],"timeoutMs":10000}';
  assert.equal(fingerprintOf(sample, keyring), keyring.mac(before));
  assert.equal(
    fingerprintOf({ ...sample, dueAt: undefined }, keyring),
    keyring.mac(before.replace('"dueAt":1893456000000', '"dueAt":null')),
  );
});

/**
 * Another value for every field of the command: adding a field to SubmitCommand fails to
 * compile here until it gets one, and the test then fails unless the field changes the
 * fingerprint or is listed in UNFINGERPRINTED_FIELDS.
 */
const otherValues: { [K in keyof SubmitCommand]-?: Exclude<SubmitCommand[K], undefined> } = {
  tenantId: 'u',
  idempotencyKey: 'other-key',
  request: { ...sample.request, url: 'https://e.com/other' },
  dueAt: '2030-01-02T00:00:00Z',
  tags: ['b'],
  retry: { ...sample.retry, maxAttempts: 2 },
  timeoutMs: 5000,
  callback: { url: 'https://e.com/callback', on: ['Failed'] },
  schedule: { id: '8d2f4a61-0c3b-4e7a-b5d9-6e1f2a3c4b50', scheduledAt: '2030-01-01T00:00:00.000Z' },
  flowKeys: ['customer:1'],
  correlationId: 'other',
};

test('every field of the command changes the fingerprint unless it is listed as not changing its meaning', () => {
  const keyring = new Keyring(Buffer.alloc(32, 7));
  const base = fingerprintOf(sample, keyring);
  const unlisted: readonly string[] = UNFINGERPRINTED_FIELDS;
  for (const [field, value] of Object.entries(otherValues)) {
    const changed = fingerprintOf({ ...sample, [field]: value }, keyring) !== base;
    assert.equal(changed, !unlisted.includes(field), `${field}: ${changed ? 'changes' : 'does not change'} it`);
  }
});
