import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fingerprintOf, type SubmitCommand } from '../../core/commands';
import { serviceCallIdFor, UUID_PATTERN, uuidV5, workflowIdFor } from '../../core/ids';
import { Keyring } from '../../core/crypto';
import { redactHeaders } from '../../core/redact';

test('uuidV5 matches the RFC 9562 test vector', () => {
  // RFC 9562 appendix A.4: name "www.example.com" in the DNS namespace.
  assert.equal(
    uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8'),
    '2ed6657d-e927-568b-95e1-2665a8aea6a2',
  );
});

test('a call id is stable per (tenant, key), distinct across tenants, random without a key', () => {
  assert.equal(serviceCallIdFor('a', 'k'), serviceCallIdFor('a', 'k'));
  assert.notEqual(serviceCallIdFor('a', 'k'), serviceCallIdFor('b', 'k'));
  assert.notEqual(serviceCallIdFor('a', 'k1'), serviceCallIdFor('a', 'k'));
  // The separator keeps ("a", "bc") and ("ab", "c") apart.
  assert.notEqual(serviceCallIdFor('a', 'bc'), serviceCallIdFor('ab', 'c'));
  assert.notEqual(serviceCallIdFor('a', undefined), serviceCallIdFor('a', undefined));
  assert.match(serviceCallIdFor('a', 'k'), UUID_PATTERN);
  assert.equal(workflowIdFor('a', 'x'), 'service-call/a/x');
});

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

test('sensitive header values are redacted whatever their case', () => {
  const out = redactHeaders({
    Authorization: 'Bearer x',
    COOKIE: 'c',
    'X-Api-Key': 'k',
    'X-Auth-Token': 't',
    'X-Client-Secret': 's',
    'x-password': 'p',
    Accept: 'application/json',
  });
  assert.deepEqual(out, {
    Authorization: '[REDACTED]',
    COOKIE: '[REDACTED]',
    'X-Api-Key': '[REDACTED]',
    'X-Auth-Token': '[REDACTED]',
    'X-Client-Secret': '[REDACTED]',
    'x-password': '[REDACTED]',
    Accept: 'application/json',
  });
});
