import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../../core/config';

test('RECONCILE_INTERVAL_MS: a minute by default, parsed, and a value out of range names the variable', () => {
  assert.equal(loadConfig({}).reconcileIntervalMs, 60_000);
  assert.equal(loadConfig({ RECONCILE_INTERVAL_MS: '5000' }).reconcileIntervalMs, 5_000);
  for (const bad of ['500', '1.5', 'soon', '86400001']) {
    assert.throws(
      () => loadConfig({ RECONCILE_INTERVAL_MS: bad }),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith('RECONCILE_INTERVAL_MS must be'),
    );
  }
});

test('WORKER_STICKY_TIMEOUT_MS: the SDK default of 10 s unless set, parsed, and a value out of range names the variable', () => {
  assert.equal(loadConfig({}).workerStickyTimeoutMs, 10_000);
  assert.equal(loadConfig({ WORKER_STICKY_TIMEOUT_MS: '60000' }).workerStickyTimeoutMs, 60_000);
  for (const bad of ['999', '2.5', 'long', '600001']) {
    assert.throws(
      () => loadConfig({ WORKER_STICKY_TIMEOUT_MS: bad }),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith('WORKER_STICKY_TIMEOUT_MS must be'),
    );
  }
});
