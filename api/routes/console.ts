import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { problem, sendProblem } from '../problem';

/**
 * The tenant console (console/, built into dist/console by `npm run build`): three static files
 * served at /console. The pages hold no data and need no key; the console signs in with an API
 * key kept in the tab's sessionStorage and reads everything through the public /v1 API. Its
 * Content-Security-Policy allows only this origin's own script, style and API, nothing inline.
 */
const DIST = path.resolve(__dirname, '../../console');

export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const FILES = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'styles.css': 'text/css; charset=utf-8',
} as const;
type ConsoleFile = keyof typeof FILES;

function load(): Map<ConsoleFile, Buffer> | null {
  try {
    return new Map((Object.keys(FILES) as ConsoleFile[]).map((f) => [f, readFileSync(path.join(DIST, f))]));
  } catch {
    return null;
  }
}

export async function consoleRoutes(fastify: FastifyInstance): Promise<void> {
  // Read once: the files change only with a new build, which means a new process.
  const files = load();
  const send = (reply: FastifyReply, file: ConsoleFile) => {
    const body = files?.get(file);
    if (body === undefined) {
      return sendProblem(reply, problem(503, 'the console is not built: run npm run build'));
    }
    return reply
      .header('content-security-policy', CONSOLE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .type(FILES[file])
      .send(body);
  };
  const hide = { schema: { hide: true } };
  fastify.get('/console', hide, async (_request, reply) => reply.redirect('/console/', 302));
  fastify.get('/console/', hide, async (_request, reply) => send(reply, 'index.html'));
  fastify.get('/console/app.js', hide, async (_request, reply) => send(reply, 'app.js'));
  fastify.get('/console/styles.css', hide, async (_request, reply) => send(reply, 'styles.css'));
}
