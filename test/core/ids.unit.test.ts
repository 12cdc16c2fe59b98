import assert from 'node:assert/strict';
import { test } from 'node:test';
import { serviceCallIdFor, UUID_PATTERN, uuidV5, workflowIdFor } from '../../core/ids';

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
