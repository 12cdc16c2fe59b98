import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ATTEMPT_FAILURE, isRetryable } from '../../core/http-policy';

test('retry follows the failure kind, never the message: a refused destination stays refused', () => {
  assert.equal(isRetryable(null, ATTEMPT_FAILURE.EgressRefused), false);
  assert.equal(isRetryable(null, ATTEMPT_FAILURE.Timeout), true);
  assert.equal(isRetryable(null, ATTEMPT_FAILURE.Network), true);
  assert.equal(isRetryable(null, ATTEMPT_FAILURE.Lost), true);
  assert.equal(isRetryable(null, null), true);
});

test('answers: 408, 429 and 5xx are retried, any other status is final', () => {
  for (const status of [408, 429, 500, 502, 503, 599]) assert.equal(isRetryable(status, null), true, String(status));
  for (const status of [200, 301, 400, 401, 404, 409, 422])
    assert.equal(isRetryable(status, null), false, String(status));
  // An answer that broke off while its body was read still counts by its status.
  assert.equal(isRetryable(404, ATTEMPT_FAILURE.Network), false);
});
