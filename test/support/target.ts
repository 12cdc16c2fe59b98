import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the target received, with the time it arrived (ms since epoch). */
export interface Hit {
  at: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface TargetResponse {
  status: number;
  body?: string | Buffer;
  headers?: Record<string, string>;
  delayMs?: number;
}

/**
 * A local HTTP server that records every hit. Responses are chosen per path; `/status/NNN`
 * answers NNN, anything else 200 with a small JSON body.
 */
export class TargetServer {
  readonly hits: Hit[] = [];
  private readonly server: http.Server;
  private routes = new Map<string, (hit: Hit) => TargetResponse>();

  constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = (req.url ?? '/').split('?')[0] ?? '/';
        const hit: Hit = {
          at: Date.now(),
          method: req.method ?? '',
          path,
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        };
        this.hits.push(hit);
        const route = this.routes.get(path);
        const statusMatch = /^\/status\/(\d{3})$/.exec(path);
        const response: TargetResponse =
          route?.(hit) ??
          (statusMatch?.[1] !== undefined
            ? { status: Number(statusMatch[1]), body: `status ${statusMatch[1]}` }
            : { status: 200, body: JSON.stringify({ ok: true, path }), headers: { 'content-type': 'application/json' } });
        const send = () => {
          res.writeHead(response.status, response.headers);
          res.end(response.body);
        };
        if (response.delayMs !== undefined) setTimeout(send, response.delayMs);
        else send();
      });
    });
  }

  route(path: string, handler: (hit: Hit) => TargetResponse): void {
    this.routes.set(path, handler);
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this.url('');
  }

  url(path: string): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}${path}`;
  }

  hitsFor(path: string): Hit[] {
    return this.hits.filter((h) => h.path === path);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
