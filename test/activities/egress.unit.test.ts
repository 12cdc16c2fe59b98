import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { buildConnector } from 'undici';
import { createGuardedConnector, type Lookup } from '../../activities/egress';
import { EgressPolicy, embeddedIpv4, parseIpv6 } from '../../core/egress-policy';

const policy = new EgressPolicy([]);

describe('address policy', () => {
  const refused = [
    '127.0.0.1',
    '127.255.255.254',
    '0.0.0.0',
    '0.1.2.3',
    '10.0.0.1',
    '10.255.255.255',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '169.254.0.1',
    '100.64.0.1',
    '100.127.255.255',
    '224.0.0.1',
    '239.255.255.250',
    '240.0.0.1',
    '255.255.255.255',
    '192.0.2.1',
    '198.51.100.7',
    '203.0.113.9',
    '198.18.0.1',
    '192.0.0.8',
    '::',
    '::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.0.0.1',
    '::ffff:169.254.169.254',
    '::127.0.0.1',
    '::10.1.2.3',
    '2002:7f00:1::',
    '2002:a9fe:a9fe::1',
    '64:ff9b::127.0.0.1',
    '64:ff9b::a9fe:a9fe',
    '64:ff9b:1::1',
    'fc00::1',
    'fd12:3456:789a::1',
    'fe80::1',
    'fe80::1%25eth0'.split('%')[0]!,
    'ff02::1',
    'ff05::2',
    '2001:db8::1',
    '2001::1',
    '100::1',
    '[::1]',
  ];
  for (const address of refused) {
    test(`refuses ${address}`, () => assert.notEqual(policy.refuseAddress(address), undefined));
  }
  const allowed = [
    '8.8.8.8',
    '1.1.1.1',
    '93.184.215.14',
    '172.32.0.1',
    '100.128.0.1',
    '2606:4700:4700::1111',
    '2a00:1450::1',
    '::ffff:8.8.8.8',
    '2002:808:808::1',
  ];
  for (const address of allowed) {
    test(`allows ${address}`, () => assert.equal(policy.refuseAddress(address), undefined));
  }

  test('parses IPv6 spellings to the same bytes', () => {
    assert.deepEqual(parseIpv6('::ffff:127.0.0.1'), parseIpv6('0:0:0:0:0:ffff:7f00:0001'));
    assert.equal(embeddedIpv4(parseIpv6('64:ff9b::7f00:1')!), '127.0.0.1');
    assert.equal(embeddedIpv4(parseIpv6('2002:0a00:0001::')!), '10.0.0.1');
    assert.equal(embeddedIpv4(parseIpv6('2606:4700::1')!), undefined);
  });

  test('the allowlist opens hosts and CIDRs, nothing else', () => {
    const open = new EgressPolicy(['10.1.0.0/16', 'internal.example.com', 'fd00::/8', '127.0.0.1']);
    assert.equal(open.refuseAddress('10.1.2.3'), undefined);
    assert.notEqual(open.refuseAddress('10.2.0.1'), undefined);
    assert.equal(open.refuseAddress('fd00::5'), undefined);
    assert.equal(open.refuseAddress('127.0.0.1'), undefined);
    assert.notEqual(open.refuseAddress('127.0.0.2'), undefined);
    assert.equal(open.isHostAllowlisted('INTERNAL.example.com.'), true);
    assert.throws(() => new EgressPolicy(['10.0.0.0/33']), /prefix/);
    assert.throws(() => new EgressPolicy(['name.example/8']), /CIDR/);
  });
});

describe('URL policy at submit', () => {
  const refusedUrls = [
    'http://127.0.0.1/',
    'http://2130706433/',
    'http://0x7f000001/',
    'http://0177.0.0.1/',
    'http://127.1/',
    'http://0x7f.0.0.1/',
    'http://[::1]/',
    'http://[::ffff:127.0.0.1]/',
    'http://[0:0:0:0:0:ffff:7f00:1]/',
    'http://localhost/',
    'http://LOCALHOST./',
    'http://api.localhost/',
    'http://169.254.169.254/latest/meta-data/',
    'http://[fe80::1]/',
    'http://10.0.0.1:8080/',
    'http://user:pass@example.com/',
    'http://user@example.com/',
    'http://0/',
    'http://[::]/',
    'http://[64:ff9b::7f00:1]/',
  ];
  for (const url of refusedUrls) {
    test(`refuses ${url}`, () => assert.notEqual(policy.refuseUrl(new URL(url)), undefined));
  }
  test('lets names through to the connect-time check', () => {
    assert.equal(policy.refuseUrl(new URL('https://example.com/hook')), undefined);
    assert.equal(policy.refuseUrl(new URL('http://8.8.8.8/')), undefined);
  });
});

describe('connect-time guard', () => {
  type Options = buildConnector.Options;
  function recordingBase(dialled: string[]): buildConnector.connector {
    return (options: Options, callback) => {
      dialled.push(options.hostname);
      // Never dial for real: answer as a refused connection would.
      callback(new Error('test connector: not dialling'), null);
    };
  }
  function connect(connector: buildConnector.connector, hostname: string): Promise<Error | null> {
    return new Promise((resolve) => {
      connector({ hostname, host: hostname, protocol: 'http:', port: '80' }, (...args) => resolve(args[0]));
    });
  }

  test('a name that resolves public, then private (rebinding), is dialled by the checked address only', async () => {
    const answers = [[{ address: '93.184.215.14', family: 4 }], [{ address: '127.0.0.1', family: 4 }]];
    const lookups: string[] = [];
    const lookup: Lookup = async (name) => {
      lookups.push(name);
      return answers.shift() ?? [];
    };
    const dialled: string[] = [];
    const connector = createGuardedConnector({ policy, lookup, base: recordingBase(dialled) });
    const first = await connect(connector, 'rebind.example.com');
    assert.match(String(first?.message), /not dialling/);
    assert.deepEqual(dialled, ['93.184.215.14'], 'dials the address it checked, never the name');
    const second = await connect(connector, 'rebind.example.com');
    assert.match(String(second?.message), /egress refused: rebind\.example\.com resolves to 127\.0\.0\.1/);
    assert.deepEqual(dialled, ['93.184.215.14'], 'the private answer is never dialled');
    assert.deepEqual(lookups, ['rebind.example.com', 'rebind.example.com']);
  });

  test('one private answer among public ones refuses the name', async () => {
    const dialled: string[] = [];
    const lookup: Lookup = async () => [
      { address: '1.1.1.1', family: 4 },
      { address: '10.0.0.5', family: 4 },
    ];
    const err = await connect(
      createGuardedConnector({ policy, lookup, base: recordingBase(dialled) }),
      'mixed.example',
    );
    assert.match(String(err?.message), /10\.0\.0\.5 is a private address/);
    assert.deepEqual(dialled, []);
  });

  test('literal addresses and localhost names are checked without a lookup', async () => {
    const dialled: string[] = [];
    const lookup: Lookup = async () => assert.fail('no lookup for literals');
    const connector = createGuardedConnector({ policy, lookup, base: recordingBase(dialled) });
    assert.match(String((await connect(connector, '[::1]'))?.message), /loopback/);
    assert.match(String((await connect(connector, '169.254.169.254'))?.message), /link-local/);
    assert.match(String((await connect(connector, 'db.localhost.'))?.message), /loopback name/);
    assert.deepEqual(dialled, []);
  });
});
