import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeCursor, parseListQuery } from '../../api/list-query';
import { BadRequestError } from '../../api/problem';
import { TenantRateLimiter } from '../../api/rate-limit';

/** The list query string as fastify hands it over: strings, and arrays for repeated names. */

function rejects(query: Record<string, unknown>, field: string, message?: RegExp): void {
  assert.throws(
    () => parseListQuery(query),
    (err: unknown) => {
      assert.ok(err instanceof BadRequestError, String(err));
      assert.equal(err.field, field);
      if (message !== undefined) assert.match(err.message, message);
      return true;
    },
  );
}

describe('parseListQuery', () => {
  test('no parameters: every status, no tags, 50 per page', () => {
    assert.deepEqual(parseListQuery({}), { statuses: [], tags: [], limit: 50 });
  });

  test('statuses: repeated and comma-separated, deduplicated', () => {
    assert.deepEqual(parseListQuery({ status: 'Failed' }).statuses, ['Failed']);
    assert.deepEqual(parseListQuery({ status: ['Failed', 'Cancelled'] }).statuses, ['Failed', 'Cancelled']);
    assert.deepEqual(parseListQuery({ status: ['Failed,Cancelled', 'Failed'] }).statuses, ['Failed', 'Cancelled']);
  });

  test('tags are repeatable and never split at commas', () => {
    assert.deepEqual(parseListQuery({ tag: ['a,b', 'c'] }).tags, ['a,b', 'c']);
  });

  test('instants need an offset; limit is 1–200', () => {
    const parsed = parseListQuery({
      createdAfter: '2030-01-01T12:00:00+02:00',
      dueBefore: '2030-01-01T00:00:00.123456Z',
      limit: '200',
    });
    assert.equal(parsed.createdAfter?.toISOString(), '2030-01-01T10:00:00.000Z');
    assert.equal(parsed.dueBefore?.toISOString(), '2030-01-01T00:00:00.123Z');
    assert.equal(parsed.limit, 200);
    assert.equal(parseListQuery({ limit: '1' }).limit, 1);
  });

  const bad: [string, Record<string, unknown>, string][] = [
    ['unknown parameter', { sort: 'asc' }, 'sort'],
    ['misspelt parameter', { statuses: 'Failed' }, 'statuses'],
    ['unknown status', { status: 'Done' }, 'status'],
    ['lower-case status', { status: 'failed' }, 'status'],
    ['empty status item', { status: 'Failed,' }, 'status'],
    ['empty tag', { tag: '' }, 'tag'],
    ['tag too long', { tag: 'x'.repeat(65) }, 'tag'],
    ['too many tags', { tag: Array.from({ length: 21 }, (_, i) => `t${i}`) }, 'tag'],
    ['date without offset', { createdAfter: '2030-01-01T00:00:00' }, 'createdAfter'],
    ['date only', { createdBefore: '2030-01-01' }, 'createdBefore'],
    ['not a date', { dueAfter: 'yesterday' }, 'dueAfter'],
    ['impossible date', { dueBefore: '2030-02-31T00:00:00Z' }, 'dueBefore'],
    ['date given twice', { dueAfter: ['2030-01-01T00:00:00Z', '2030-01-02T00:00:00Z'] }, 'dueAfter'],
    ['limit 0', { limit: '0' }, 'limit'],
    ['limit 201', { limit: '201' }, 'limit'],
    ['limit negative', { limit: '-5' }, 'limit'],
    ['limit fraction', { limit: '2.5' }, 'limit'],
    ['limit word', { limit: 'ten' }, 'limit'],
    ['limit empty', { limit: '' }, 'limit'],
    ['limit twice', { limit: ['10', '20'] }, 'limit'],
    ['cursor garbage', { cursor: 'not a cursor!' }, 'cursor'],
    ['cursor of base64 junk', { cursor: Buffer.from('{"v":1}').toString('base64url') }, 'cursor'],
    ['cursor not JSON', { cursor: Buffer.from('hello').toString('base64url') }, 'cursor'],
  ];
  for (const [name, query, field] of bad) {
    test(`${name} → BadRequestError naming ${field}`, () => rejects(query, field));
  }

  test('a cursor round-trips with the filters it was made for, and only with them', () => {
    const filter = parseListQuery({ status: 'Failed', tag: ['a', 'b'] });
    const position = { createdAt: '2030-01-01T00:00:00.123456Z', id: '0b7e2c4a-8f3d-4e1b-9a6c-5d2f1e0a9b8c' };
    const cursor = encodeCursor(position, filter);
    assert.deepEqual(parseListQuery({ status: 'Failed', tag: ['b', 'a'], cursor, limit: '10' }).after, position);
    rejects({ status: 'Cancelled', tag: ['a', 'b'], cursor }, 'cursor', /other filters/);
    rejects({ cursor }, 'cursor', /other filters/);
    const tampered = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')), i: "x' or 1=1" }),
    ).toString('base64url');
    rejects({ status: 'Failed', tag: ['a', 'b'], cursor: tampered }, 'cursor');
  });
});

describe('TenantRateLimiter', () => {
  test('allows the burst, then one request per 1/rate seconds; tenants are independent', () => {
    let now = 0;
    const limiter = new TenantRateLimiter({ perSecond: 2, burst: 3 }, () => now);
    assert.deepEqual(
      [1, 2, 3].map(() => limiter.take('a')),
      [0, 0, 0],
    );
    assert.equal(limiter.take('a'), 1, 'empty bucket: retry in a second (rounded up)');
    assert.equal(limiter.take('b'), 0, 'another tenant has its own bucket');
    now += 500;
    assert.equal(limiter.take('a'), 0, 'half a second at 2/s refills one token');
    assert.equal(limiter.take('a'), 1);
    now += 10_000;
    assert.deepEqual(
      [1, 2, 3, 4].map(() => limiter.take('a')),
      [0, 0, 0, 1],
      'refills up to the burst only',
    );
  });

  test('Retry-After is whole seconds, at least 1', () => {
    let now = 0;
    const limiter = new TenantRateLimiter({ perSecond: 1, burst: 1 }, () => now);
    assert.equal(limiter.take('a'), 0);
    assert.equal(limiter.take('a'), 1);
    now += 400;
    assert.equal(limiter.take('a'), 1);
  });

  test('a rate of 0 turns limiting off', () => {
    const limiter = new TenantRateLimiter({ perSecond: 0, burst: 1 });
    for (let i = 0; i < 1000; i++) assert.equal(limiter.take('a'), 0);
  });
});
