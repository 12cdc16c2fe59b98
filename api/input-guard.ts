import type { FastifyReply, FastifyRequest } from 'fastify';
import { unstorableText } from '../core/text';
import { BadRequestError } from './problem';

/**
 * One check of all client input, before any route's own validation (a preValidation hook on
 * every route, so a new route has it without asking):
 * - query parameters a route does not declare → 400, on every route alike;
 * - text PostgreSQL cannot store (NUL, lone surrogates) in a query parameter, path parameter,
 *   body string or body property name → 400 naming the field;
 * - JSON nested deeper than MAX_JSON_DEPTH → 400 (serializing or sealing it would overflow
 *   the stack);
 * - a number JSON cannot carry (`1e400` parses to Infinity and would be sent as `null`) → 400.
 * A route names the parts of its body that are the tenant's payload (`config.opaqueBody`): they
 * are sealed, never stored as text, and go to the target as submitted, so they may hold any
 * text; depth and numbers are checked there too.
 * The walk is iterative, so no input can overflow the stack here.
 */

const MAX_JSON_DEPTH = 64;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Dotted paths into the body that hold the tenant's opaque payload (e.g. `request.body`). */
    opaqueBody?: readonly string[];
    /**
     * A top-level body property whose array items the route judges one by one (the batch): the
     * guard leaves them alone, and the route checks each with `itemInputProblem`.
     */
    itemsBody?: string;
  }
}

/** A field name as it can be shown: the characters it was refused for, escaped. */
function printable(path: string): string {
  // eslint-disable-next-line no-control-regex
  return path.replace(/[\u0000-\u001f\ud800-\udfff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

interface Frame {
  value: unknown;
  path: string;
  depth: number;
  /** The opaque payload this value sits in (its path), if any. */
  opaque: string | undefined;
}

/** Checks one parsed JSON value (body) or parameter object; throws a BadRequestError naming the field. */
function checkInput(
  root: unknown,
  opts: { prefix?: string; opaque?: readonly string[]; skip?: string; maxDepth?: number } = {},
): void {
  const maxDepth = opts.maxDepth ?? MAX_JSON_DEPTH;
  const opaque = new Set(opts.opaque ?? []);
  const join = (path: string, key: string) => (path === '' ? key : `${path}.${key}`);
  const stack: Frame[] = [{ value: root, path: opts.prefix ?? '', depth: 0, opaque: undefined }];
  // Too deep is named by where it starts: the payload, else the top-level field, else the body.
  const tooDeepField = (frame: Frame) => {
    if (frame.opaque !== undefined) return frame.opaque;
    if (Array.isArray(root) || opts.prefix !== undefined) return opts.prefix ?? 'body';
    return frame.path.split('.')[0] ?? 'body';
  };
  for (let frame = stack.pop(); frame !== undefined; frame = stack.pop()) {
    const { value, path, depth } = frame;
    const field = () => printable(path === '' ? 'body' : path);
    if (typeof value === 'string') {
      const why = frame.opaque !== undefined ? undefined : unstorableText(value);
      if (why !== undefined) throw new BadRequestError(field(), why);
    } else if (typeof value === 'number') {
      if (!Number.isFinite(value)) {
        throw new BadRequestError(field(), 'is a number JSON cannot carry (beyond ±1.8e308)');
      }
    } else if (typeof value === 'object' && value !== null) {
      if (depth >= maxDepth) {
        throw new BadRequestError(printable(tooDeepField(frame)), `is nested deeper than ${maxDepth} levels`);
      }
      const entries: [string, unknown][] = Array.isArray(value)
        ? value.map((v, i) => [String(i), v])
        : Object.entries(value as Record<string, unknown>);
      for (const [key, child] of entries) {
        const childPath = join(path, key);
        if (childPath === opts.skip) continue;
        if (frame.opaque === undefined) {
          const why = unstorableText(key);
          if (why !== undefined) throw new BadRequestError(printable(childPath), `(the name) ${why}`);
        }
        stack.push({
          value: child,
          path: childPath,
          depth: depth + 1,
          opaque: frame.opaque ?? (opaque.has(childPath) ? childPath : undefined),
        });
      }
    }
  }
}

function declaredQuery(request: FastifyRequest): string[] {
  const schema = request.routeOptions.schema?.querystring as { properties?: Record<string, unknown> } | undefined;
  return Object.keys(schema?.properties ?? {});
}

/** The preValidation hook of every route. */
export async function inputGuard(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  const url = request.routeOptions.url;
  // Swagger UI's static files are not part of the API.
  if (url === undefined || url.startsWith('/docs')) return;
  const query = request.query as Record<string, unknown> | undefined;
  if (query !== undefined && query !== null) {
    const known = declaredQuery(request);
    for (const name of Object.keys(query)) {
      if (!known.includes(name)) {
        const detail = known.length === 0 ? 'this operation takes none' : `known: ${known.join(', ')}`;
        throw new BadRequestError(printable(name), `is not a known parameter (${detail})`);
      }
    }
    // A parameter's field is its name (repeated or not), as the list's own errors name it.
    for (const [name, value] of Object.entries(query)) {
      for (const item of Array.isArray(value) ? (value as unknown[]) : [value]) {
        const why = typeof item === 'string' ? unstorableText(item) : undefined;
        if (why !== undefined) throw new BadRequestError(printable(name), why);
      }
    }
  }
  const params = request.params as Record<string, unknown> | undefined;
  if (params !== undefined && params !== null) checkInput(params, { prefix: 'params' });
  if (request.body !== undefined) {
    const { opaqueBody, itemsBody } = request.routeOptions.config;
    checkInput(request.body, { opaque: opaqueBody, skip: itemsBody });
  }
}

/**
 * One item of a batch checked as the guard checks a whole body (`opaque`: its payload paths),
 * with fields named as in the item: the BadRequestError it is refused with, or undefined.
 */
export function itemInputProblem(item: unknown, opaque: readonly string[]): BadRequestError | undefined {
  try {
    checkInput(item, { opaque });
    return undefined;
  } catch (err) {
    if (err instanceof BadRequestError) return err;
    throw err;
  }
}
