import assert from 'node:assert/strict';
import { test } from 'node:test';
import { redactHeaders } from '../../core/redact';

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
