import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freeLoopbackPort, sleep } from '../../runtime/process-util';

/**
 * `npm run test:contract`: Schemathesis against the real service. Starts Punctual as `npm start`
 * does (`punctual.js all`: embedded PostgreSQL and Temporal, api, worker, relay) in a scratch
 * data folder on free ports with one known API key, waits until it answers, runs
 * `schemathesis run` on its /openapi.json with the settings in test/contract/schemathesis.toml
 * (all checks, a fixed seed, a bounded number of cases), then stops the service. Schemathesis
 * is installed into .cache/schemathesis (a venv) on first use.
 */

const ROOT = path.resolve(__dirname, '../../..');
const VENV = path.join(ROOT, '.cache', 'schemathesis');
const SCHEMATHESIS_VERSION = '4.32.5';
const CONFIG = path.join(ROOT, 'test', 'contract', 'schemathesis.toml');

const log = (line: string) => process.stderr.write(`contract: ${line}\n`);

interface Command {
  cmd: string;
  prefix: string[];
  env: NodeJS.ProcessEnv;
}

function installed(command: Command): boolean {
  const r = spawnSync(command.cmd, [...command.prefix, '--version'], { encoding: 'utf8', env: command.env });
  return r.status === 0 && r.stdout.includes(SCHEMATHESIS_VERSION);
}

/**
 * Schemathesis in a venv under .cache/schemathesis; where Python has no venv module (Debian
 * without python3-venv), a `pip install --target` there instead, run through PYTHONPATH.
 */
function ensureSchemathesis(): Command {
  const venv: Command = { cmd: path.join(VENV, 'bin', 'schemathesis'), prefix: [], env: process.env };
  const target = path.join(VENV, 'target');
  const plain: Command = {
    cmd: 'python3',
    prefix: [
      '-c',
      'import sys; from schemathesis.cli import schemathesis; sys.argv[0] = "schemathesis"; sys.exit(schemathesis())',
    ],
    env: { ...process.env, PYTHONPATH: target },
  };
  if (existsSync(venv.cmd) && installed(venv)) return venv;
  if (existsSync(target) && installed(plain)) return plain;
  const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'inherit' }).status === 0;
  const spec = `schemathesis==${SCHEMATHESIS_VERSION}`;
  log(`installing ${spec} into ${VENV}`);
  if (
    run('python3', ['-m', 'venv', '--clear', VENV]) &&
    run(path.join(VENV, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', spec])
  ) {
    return venv;
  }
  log('no usable venv; installing with pip --target instead');
  if (!run('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--target', target, spec])) {
    throw new Error(`could not install ${spec} (needs python3 with venv or pip)`);
  }
  return plain;
}

async function waitForHealth(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`the service did not answer ${url}/healthz within ${timeoutMs} ms`);
    await sleep(250);
  }
}

async function main(): Promise<number> {
  const schemathesis = ensureSchemathesis();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'punctual-contract-'));
  // As root, the embedded PostgreSQL runs as user postgres, which must be able to enter it.
  chmodSync(dataDir, 0o755);
  const port = await freeLoopbackPort();
  const key = `contract-${randomBytes(16).toString('hex')}`;
  const url = `http://127.0.0.1:${port}`;
  const service = spawn(process.execPath, [path.join(ROOT, 'dist', 'bin', 'punctual.js'), 'all'], {
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      PORT: String(port),
      EMBEDDED_POSTGRES_PORT: String(await freeLoopbackPort()),
      EMBEDDED_TEMPORAL_PORT: String(await freeLoopbackPort()),
      EMBEDDED_TEMPORAL_UI_PORT: String(await freeLoopbackPort()),
      API_KEYS: `contract:${key}`,
      // Schemathesis sends many requests at once; the limit has its own tests.
      RATE_LIMIT_PER_SECOND: '0',
      LOG_LEVEL: process.env.PUNCTUAL_CONTRACT_LOG_LEVEL ?? 'error',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise<number>((resolve) => service.on('exit', (code) => resolve(code ?? 1)));
  try {
    await Promise.race([
      waitForHealth(url, 180_000),
      exited.then((code) => {
        throw new Error(`the service exited (${code}) before it answered`);
      }),
    ]);
    log(`service up at ${url}; running schemathesis`);
    const result = spawnSync(
      schemathesis.cmd,
      [
        ...schemathesis.prefix,
        '--config-file',
        CONFIG,
        'run',
        `${url}/openapi.json`,
        '--header',
        `Authorization: Bearer ${key}`,
      ],
      { stdio: 'inherit', cwd: ROOT, env: schemathesis.env },
    );
    return result.status ?? 1;
  } finally {
    service.kill('SIGTERM');
    const stopped = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
    if (!stopped) service.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
