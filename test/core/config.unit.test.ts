import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, loadConfig, type Config } from '../../core/config';

/** A whole-number setting: its default, a value parsed, and values refused with the variable's name. */
function checksRange(name: string, field: keyof Config, fallback: number, set: [string, number], bad: string[]) {
  assert.equal(loadConfig({})[field], fallback);
  assert.equal(loadConfig({ [name]: set[0] })[field], set[1]);
  for (const value of bad) {
    assert.throws(
      () => loadConfig({ [name]: value }),
      (err: unknown) => err instanceof ConfigError && err.message.startsWith(`${name} must be`),
    );
  }
}

test('RECONCILE_INTERVAL_MS: a minute by default, parsed, and a value out of range names the variable', () => {
  checksRange(
    'RECONCILE_INTERVAL_MS',
    'reconcileIntervalMs',
    60_000,
    ['5000', 5_000],
    ['500', '1.5', 'soon', '86400001'],
  );
});

test('WORKER_STICKY_TIMEOUT_MS: the SDK default of 10 s unless set, parsed, and a value out of range names the variable', () => {
  checksRange(
    'WORKER_STICKY_TIMEOUT_MS',
    'workerStickyTimeoutMs',
    10_000,
    ['60000', 60_000],
    ['999', '2.5', 'long', '600001'],
  );
});
