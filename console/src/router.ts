import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (`#/calls`, `#/calls?scheduleId=<id>`, `#/calls/<id>`, `#/schedules`,
 * `#/schedules/<id>`, `#/secrets`): the server serves one page, and nothing of the route, or of a
 * filter, ever carries the key.
 */
export type Route =
  | { page: 'calls'; scheduleId?: string }
  | { page: 'call'; id: string }
  | { page: 'schedules' }
  | { page: 'schedule'; id: string }
  | { page: 'secrets' };

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#/, '').split('?', 2);
  const call = /^\/calls\/([^/]+)$/.exec(path);
  if (call?.[1] !== undefined) return { page: 'call', id: decodeURIComponent(call[1]) };
  const schedule = /^\/schedules\/([^/]+)$/.exec(path);
  if (schedule?.[1] !== undefined) return { page: 'schedule', id: decodeURIComponent(schedule[1]) };
  if (path === '/schedules') return { page: 'schedules' };
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

/** Runs `tick` every `everyMs` while `active`; stops on unmount. */
export function usePolling(active: boolean, everyMs: number, tick: () => void): void {
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(tick, everyMs);
    return () => clearInterval(timer);
  }, [active, everyMs, tick]);
}
