import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { locateTemporalCli } from '../../runtime/temporal-cli';
import { findCompiledTests, PROJECT_ROOT, startTestInfra } from '../support/infra';
import { formatTable, readResults } from './report';

/**
 * `npm run test:faults`: the crash-and-restart suite (`test/faults/*.faults.test.ts`), apart
 * from `npm test`. Starts the shared PostgreSQL and Temporal dev server like test/run.ts (the
 * scenarios that stop PostgreSQL or Temporal start their own), runs the scenario files one at a
 * time, and ends with the checker's counts for every scenario run, as a table. Logs of every
 * process the scenarios started stay in .data/faults/ for the post-mortem.
 *
 * Arguments filter scenario files by substring: `npm run test:faults -- worker`.
 */

const log = (msg: string) => process.stderr.write(`[faults] ${msg}\n`);

async function main(): Promise<number> {
  const started = Date.now();
  const filters = process.argv.slice(2);
  const faultsDir = path.join(PROJECT_ROOT, 'dist/test/faults');
  // Matched against the file name, so a checkout's own path never matches every scenario.
  const files = findCompiledTests(faultsDir, '.faults.test.js').filter(
    (f) => filters.length === 0 || filters.some((p) => path.relative(faultsDir, f).includes(p)),
  );
  if (files.length === 0) {
    log(`no fault scenarios match ${filters.join(' ')}`);
    return 1;
  }
  const logDir = path.join(PROJECT_ROOT, '.data', 'faults');
  rmSync(logDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });
  const infra = await startTestInfra(log);
  const reportFile = path.join(infra.tmp, 'faults-report.jsonl');
  let code: number;
  try {
    const cliPath = await locateTemporalCli({ projectRoot: PROJECT_ROOT });
    const child = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
      stdio: 'inherit',
      env: {
        ...process.env,
        ...infra.env,
        PUNCTUAL_TEST_TEMPORAL_CLI: cliPath,
        PUNCTUAL_FAULTS_REPORT: reportFile,
        PUNCTUAL_FAULTS_LOG_DIR: logDir,
        PUNCTUAL_FAULTS_TMP: infra.tmp,
      },
    });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? 1)));
  } finally {
    const results = readResults(reportFile);
    await infra.stop();
    const failed = results.filter((r) => !r.ok && r.knownIssue === undefined);
    const minutes = ((Date.now() - started) / 60_000).toFixed(1);
    process.stdout.write(
      `\nFault suite: ${results.length} scenario runs, ${failed.length} failed, ${minutes} min; process logs in ${path.relative(PROJECT_ROOT, logDir)}/\n` +
        `Checker counts per run (all must be 0, duplicate hits at most the calls in flight when a fault could repeat an attempt):\n` +
        `${formatTable(results)}\n`,
    );
  }
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`fault suite failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
