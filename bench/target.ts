import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { nowMs } from './stats';

/**
 * The benchmark's target: a loopback HTTP server that answers 200 with a small JSON body and
 * notes when each request arrived. A request is named by its `idempotency-key` header (what
 * Punctual sends: the call id) or else by the last path segment (the baseline puts its id there).
 */
export class BenchTarget {
  private readonly server: http.Server;
  private readonly hits = new Map<string, number>();
  private readonly waiters = new Map<string, (at: number) => void>();
  /** Requests that came a second time for the same name (at-least-once repeats). */
  duplicates = 0;
  total = 0;
  /** Requests being answered right now, and the most seen at once. */
  inFlight = 0;
  maxInFlight = 0;

  /** delayMs: how long each answer takes (a slow target). */
  constructor(private readonly delayMs = 0) {
    this.server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
      const at = nowMs();
      const key = req.headers['idempotency-key'];
      const name = typeof key === 'string' ? key : (req.url ?? '/').split('/').pop()!;
      this.total++;
      if (this.hits.has(name)) this.duplicates++;
      else this.hits.set(name, at);
      const waiter = this.waiters.get(name);
      if (waiter !== undefined) {
        this.waiters.delete(name);
        waiter(at);
      }
      this.inFlight++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      req.resume();
      req.on('end', () => {
        const answer = () => {
          this.inFlight--;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"ok":true}');
        };
        if (this.delayMs > 0) setTimeout(answer, this.delayMs);
        else answer();
      });
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  hitAt(name: string): number | undefined {
    return this.hits.get(name);
  }

  /** Resolves with the arrival time of the first request named `name`; rejects after timeoutMs. */
  waitFor(name: string, timeoutMs: number): Promise<number> {
    const at = this.hits.get(name);
    if (at !== undefined) return Promise.resolve(at);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(name);
        reject(new Error(`target not hit for ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(name, (t) => {
        clearTimeout(timer);
        resolve(t);
      });
    });
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
