import assert from 'node:assert/strict';
import { test } from 'node:test';
import { socketDirFor } from '../../runtime/embedded-postgres';

test('the socket goes in the data directory when its path fits in a socket address', () => {
  assert.equal(socketDirFor('/tmp/p/.data/postgres', 54329), '/tmp/p/.data/postgres');
});

test('a data directory too deep for a socket address means TCP only', () => {
  const deep = `/tmp/${'d'.repeat(90)}`;
  assert.equal(socketDirFor(deep, 54329), undefined);
  // The limit counts bytes, not characters.
  assert.equal(socketDirFor(`/tmp/${'é'.repeat(45)}`, 54329), undefined);
});
