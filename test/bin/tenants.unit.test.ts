import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkArguments, UsageError } from '../../bin/tenants';
import { unstorableText } from '../../core/text';

test('tenants: an argument PostgreSQL cannot store is refused before any connection, naming it', () => {
  assert.throws(
    () => checkArguments(['keys', 'revoke', 'a\u0000b']),
    (err: unknown) => {
      assert.ok(err instanceof UsageError);
      assert.match(err.message, /argument 3 must not contain a NUL/);
      return true;
    },
  );
  assert.throws(() => checkArguments(['create', 'x\ud800']), /argument 2 must be valid Unicode/);
  assert.doesNotThrow(() => checkArguments(['create', 'acme', 'ключ', '😀']));
});

test('unstorableText: NUL and unpaired surrogates only', () => {
  assert.equal(unstorableText('plain ключ 😀'), undefined);
  assert.match(String(unstorableText('\u0000')), /NUL/);
  for (const s of ['\ud800', '\udc00', 'a\ud83d', '\ude00b', '\ud83d\ud83d\ude00x\udc00']) {
    assert.match(String(unstorableText(s)), /lone surrogate/, JSON.stringify(s));
  }
});
