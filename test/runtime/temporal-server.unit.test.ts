import assert from 'node:assert/strict';
import { test } from 'node:test';
import { temporalServerConfig, toYaml, type ServerPorts } from '../../runtime/temporal-server';

const ports: ServerPorts = {
  frontend: 7301,
  frontendMembership: 7302,
  history: 7303,
  historyMembership: 7304,
  matching: 7305,
  matchingMembership: 7306,
  worker: 7307,
  workerMembership: 7308,
};
const postgres = { host: '127.0.0.1', port: 5499, user: 'postgres', password: 'p"w\\d:1' };

test('toYaml writes nested maps in block style, strings double-quoted, empty ones inline', () => {
  assert.equal(
    toYaml({ a: { b: 1, 'c d': 'x"y', e: true }, f: [], g: {}, h: ['s', 2], i: [{ j: 'k' }] }),
    [
      'a:',
      '  b: 1',
      '  "c d": "x\\"y"',
      '  e: true',
      'f: []',
      'g: {}',
      'h:',
      '  - "s"',
      '  - 2',
      'i:',
      '  -',
      '    j: "k"',
      '',
    ].join('\n'),
  );
});

test('the server config carries the shards, the postgres12 stores and every service on 127.0.0.1', () => {
  const yaml = temporalServerConfig({ shards: 8, ports, postgres });
  assert.match(yaml, /^ {2}numHistoryShards: 8$/m);
  assert.equal(yaml.match(/pluginName: "postgres12"/g)?.length, 2);
  assert.match(yaml, /databaseName: "temporal"\n/);
  assert.match(yaml, /databaseName: "temporal_visibility"\n/);
  assert.equal(yaml.match(/connectAddr: "127.0.0.1:5499"/g)?.length, 2);
  // The password survives quoting: JSON escapes are YAML double-quoted escapes.
  assert.equal(yaml.match(/password: "p\\"w\\\\d:1"/g)?.length, 2);
  for (const [name, grpc, membership] of [
    ['frontend', 7301, 7302],
    ['history', 7303, 7304],
    ['matching', 7305, 7306],
    ['worker', 7307, 7308],
  ] as const) {
    assert.ok(
      yaml.includes(
        `  ${name}:\n    rpc:\n      grpcPort: ${grpc}\n      membershipPort: ${membership}\n      bindOnIP: "127.0.0.1"\n`,
      ),
      `${name} section`,
    );
  }
  assert.match(yaml, /broadcastAddress: "127.0.0.1"/);
  assert.match(yaml, /rpcAddress: "127.0.0.1:7301"/);
  assert.doesNotMatch(yaml, /0\.0\.0\.0|localhost/);
  assert.doesNotMatch(yaml, /dynamicConfigClient/);
  assert.match(
    temporalServerConfig({ shards: 1, ports, postgres, dynamicConfigFile: '/d/dc.yaml' }),
    /dynamicConfigClient:\n {2}filepath: "\/d\/dc.yaml"\n {2}pollInterval: "10s"\n/,
  );
});

test('the server config refuses zero shards, ports used twice and membership ports above 32767', () => {
  assert.throws(() => temporalServerConfig({ shards: 0, ports, postgres }), /numHistoryShards/);
  assert.throws(() => temporalServerConfig({ shards: 1.5, ports, postgres }), /numHistoryShards/);
  assert.throws(
    () => temporalServerConfig({ shards: 4, ports: { ...ports, worker: ports.history }, postgres }),
    /port/,
  );
  // The server keeps membership ports in a smallint column.
  assert.throws(
    () => temporalServerConfig({ shards: 4, ports: { ...ports, historyMembership: 32768 }, postgres }),
    /historyMembership port 32768 is above 32767/,
  );
});
