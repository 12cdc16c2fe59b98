import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (`#/calls`, `#/calls?scheduleId=<id>`, `#/calls/<id>`, `#/schedules`,
 * `#/schedules/<id>`, `#/flow-limits`, `#/flow-limits/<key>`, `#/secrets`): the server serves one
 * page, and nothing of the route, or of a filter, ever carries the key. Path segments are
 * URI-encoded (a flow key's `:` is `%3A`).
 */
export type Route =
  | { page: 'calls'; scheduleId?: string }
  | { page: 'call'; id: string }
  | { page: 'schedules' }
  | { page: 'schedule'; id: string }
  | { page: 'flow-limits' }
  | { page: 'flow-limit'; key: string }
  | { page: 'secrets' };

/** A segment as typed or linked; one that is not valid percent-encoding is kept as it is (the API then says 400). */
function segment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#/, '').split('?', 2);
  const call = /^\/calls\/([^/]+)$/.exec(path);
  if (call?.[1] !== undefined) return { page: 'call', id: segment(call[1]) };
  const schedule = /^\/schedules\/([^/]+)$/.exec(path);
  if (schedule?.[1] !== undefined) return { page: 'schedule', id: segment(schedule[1]) };
  const limit = /^\/flow-limits\/([^/]+)$/.exec(path);
  if (limit?.[1] !== undefined) return { page: 'flow-limit', key: segment(limit[1]) };
  if (path === '/schedules') return { page: 'schedules' };
  if (path === '/flow-limits') return { page: 'flow-limits' };
  if (path === '/secrets') return { page: 'secrets' };
  const scheduleId = new URLSearchParams(query).get('scheduleId');
  return scheduleId === null || scheduleId === '' ? { page: 'calls' } : { page: 'calls', scheduleId };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return route;
}

export function callHref(id: string): string {
  return `#/calls/${encodeURIComponent(id)}`;
}

/** The calls list filtered to one schedule's runs. */
export function scheduleCallsHref(scheduleId: string): string {
  return `#/calls?scheduleId=${encodeURIComponent(scheduleId)}`;
}

export function scheduleHref(id: string): string {
  return `#/schedules/${encodeURIComponent(id)}`;
}

export function flowLimitHref(key: string): string {
  return `#/flow-limits/${encodeURIComponent(key)}`;
}

/** Runs `tick` every `everyMs` while `active`; stops on unmount. */
export function usePolling(active: boolean, everyMs: number, tick: () => void): void {
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(tick, everyMs);
    return () => clearInterval(timer);
  }, [active, everyMs, tick]);
}
