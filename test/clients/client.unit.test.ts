import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { retryAfterMs } from '@punctual/client';
import { CLIENT_ROOT } from './support';

test('Retry-After in seconds or as an HTTP date; nothing or garbage is undefined', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');
  assert.equal(retryAfterMs('3', now), 3000);
  assert.equal(retryAfterMs('Tue, 01 Jan 2030 00:00:05 GMT', now), 5000);
  assert.equal(retryAfterMs('Mon, 31 Dec 2029 23:59:00 GMT', now), 0);
  assert.equal(retryAfterMs(null, now), undefined);
  assert.equal(retryAfterMs('soon', now), undefined);
});

test('the main entry and everything it requires use no Node built-in (it must run in browsers)', () => {
  const builtins = new Set(builtinModules);
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const [, name] of source.matchAll(/require\("([^"]+)"\)/g)) {
      assert.ok(
        !name!.startsWith('node:') && !builtins.has(name!),
        `${path.relative(CLIENT_ROOT, file)} requires ${name}`,
      );
      if (name!.startsWith('.')) visit(require.resolve(path.resolve(path.dirname(file), name!)));
    }
  };
  visit(path.join(CLIENT_ROOT, 'dist/src/index.js'));
  assert.ok(seen.size >= 4, [...seen].join(', '));
});
