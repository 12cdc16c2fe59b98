import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { Agent, request } from 'undici';

/**
 * The baseline's worker, run by `bench/run.ts` as a process of its own:
 * `node dist/bench/baseline-worker.js` with BASELINE_* variables. It prints "ready" once it
 * polls, and stops on SIGTERM.
 */

const dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 64 });

function createBaselineActivities() {
  return {
    /** The same HTTP call a Punctual attempt makes: undici, 10 s timeout, body read up to 8 KB. */
    async httpCall(url: string): Promise<number> {
      const response = await request(url, { method: 'POST', dispatcher, signal: AbortSignal.timeout(10_000) });
      let size = 0;
      for await (const chunk of response.body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > 8192) {
          response.body.destroy();
          break;
        }
      }
      return response.statusCode;
    },
  };
}

export type BaselineActivities = ReturnType<typeof createBaselineActivities>;

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address: env('BASELINE_TEMPORAL_ADDRESS') });
  const tuning = JSON.parse(process.env.BASELINE_WORKER_OPTIONS ?? '{}') as Partial<WorkerOptions>;
  const bundle = process.env.BASELINE_WORKFLOW_BUNDLE;
  const worker = await Worker.create({
    connection,
    namespace: env('BASELINE_NAMESPACE'),
    taskQueue: env('BASELINE_TASK_QUEUE'),
    ...(bundle === undefined || bundle === ''
      ? { workflowsPath: require.resolve('./baseline-workflows') }
      : { workflowBundle: { codePath: bundle } }),
    activities: createBaselineActivities(),
    shutdownGraceTime: '5 seconds',
    ...tuning,
  });
  process.on('SIGTERM', () => worker.shutdown());
  process.on('SIGINT', () => worker.shutdown());
  const running = worker.run();
  process.stdout.write('ready\n');
  await running;
  await connection.close();
  await dispatcher.close();
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`baseline worker: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
