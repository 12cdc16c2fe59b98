import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { locateTemporalCli } from '../../runtime/temporal-cli';
import { startTemporalDevServer, type TemporalDevServer } from '../../runtime/temporal-dev-server';
import { freePort } from '../support/net';

/**
 * A Temporal dev server of a scenario's own (the scenarios that stop Temporal cannot share the
 * suite's), on one port and one database file in `dir` for every start, each start logged to
 * its own file in the suite's log folder.
 */
export async function ownTemporalServer(
  scenario: string,
  run: number,
): Promise<{ dir: string; dbFile: string; start: () => Promise<TemporalDevServer> }> {
  const projectRoot = path.resolve(__dirname, '../../..');
  const cliPath = process.env.PUNCTUAL_TEST_TEMPORAL_CLI ?? (await locateTemporalCli({ projectRoot }));
  const dir = mkdtempSync(path.join(process.env.PUNCTUAL_FAULTS_TMP ?? os.tmpdir(), `${scenario}-`));
  const logDir = process.env.PUNCTUAL_FAULTS_LOG_DIR ?? dir;
  const port = await freePort();
  const dbFile = path.join(dir, 'temporal.db');
  let starts = 0;
  const start = () =>
    startTemporalDevServer({
      cliPath,
      port,
      namespace: 'default',
      dbFile,
      logFile: path.join(logDir, `${scenario}-${run}-server-${++starts}.log`),
    });
  return { dir, dbFile, start };
}
