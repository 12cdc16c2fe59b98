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
  /** Takes over the response entirely (e.g. to stream a large body and watch the socket). */
  handle?: (res: http.ServerResponse) => void;
}

/**
 * A local HTTP server that records every hit. Responses are chosen per path; `/status/NNN`
 * answers NNN, anything else 200 with a small JSON body.
 */
export class TargetServer {
  readonly hits: Hit[] = [];
  private readonly server: http.Server;
  private routes = new Map<string, (hit: Hit) => TargetResponse>();
  private fallback: ((hit: Hit) => TargetResponse | undefined) | undefined;

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
          this.fallback?.(hit) ??
          (statusMatch?.[1] !== undefined
            ? { status: Number(statusMatch[1]), body: `status ${statusMatch[1]}` }
            : {
                status: 200,
                body: JSON.stringify({ ok: true, path }),
                headers: { 'content-type': 'application/json' },
              });
        const send = () => {
          if (response.handle !== undefined) return response.handle(res);
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

  /** Answers paths that have no route of their own; undefined falls through to the built-in answers. */
  routeDefault(handler: (hit: Hit) => TargetResponse | undefined): void {
    this.fallback = handler;
  }

  private host = '127.0.0.1';

  /** Listens on `host` (any loopback address) and a free port. */
  async start(host = '127.0.0.1'): Promise<string> {
    this.host = host;
    await new Promise<void>((resolve) => this.server.listen(0, host, resolve));
    return this.url('');
  }

  url(path: string): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://${this.host}:${port}${path}`;
  }

  hitsFor(path: string): Hit[] {
    return this.hits.filter((h) => h.path === path);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
