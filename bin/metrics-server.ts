import http from 'node:http';
import { registry } from '../core/metrics';
import { temporalWorkerMetrics } from './roles';
import type { RunningRole } from './roles';

/**
 * /metrics for a process without the API (a worker or relay run alone): Punctual's metrics and,
 * in a worker, the Temporal SDK's own.
 */
export async function startMetricsServer(host: string, port: number): Promise<RunningRole & { url: string }> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    Promise.all([registry.metrics(), temporalWorkerMetrics().catch(() => '')])
      .then(([own, sdk]) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(`${own}\n${sdk}`);
      })
      .catch(() => res.writeHead(500).end());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    name: 'metrics',
    url: `http://${host}:${port}/metrics`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
