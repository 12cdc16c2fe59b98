import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (`#/calls`, `#/calls/<id>`, `#/secrets`): the server serves one page, and nothing
 * of the route, or of a filter, ever carries the key.
 */
export type Route = { page: 'calls' } | { page: 'call'; id: string } | { page: 'secrets' };

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '');
  const call = /^\/calls\/([^/?#]+)$/.exec(path);
  if (call?.[1] !== undefined) return { page: 'call', id: decodeURIComponent(call[1]) };
  if (path === '/secrets') return { page: 'secrets' };
  return { page: 'calls' };
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

/** Runs `tick` every `everyMs` while `active`; stops on unmount. */
export function usePolling(active: boolean, everyMs: number, tick: () => void): void {
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(tick, everyMs);
    return () => clearInterval(timer);
  }, [active, everyMs, tick]);
}
