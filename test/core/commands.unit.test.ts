import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fingerprintOf, type SubmitCommand } from '../../core/commands';
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
