import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { describeError, isStatus } from './session';

/** One thing read by its id (a call, a schedule, a flow limit), as its page shows it. */
export interface Detail<T> {
  /** The last answer; null until the first one. */
  value: T | null;
  /** An answer an action already had (a reschedule's call), shown without reading again. */
  setValue: (value: T) => void;
  /** The API said 404 or 400: another tenant's, unknown or malformed, all "not found". */
  missing: boolean;
  /** Why the last read failed otherwise; the last value stays shown. */
  error: string | null;
  load: () => Promise<void>;
}

/**
 * Reads one thing for a detail page and reads it again on `load` (polling, after an action). A 401
 * signs out. The pages are keyed by their id (main.tsx), so one hook lives for one id; `read` may
 * be a new function on every render.
 */
export function useDetail<T>(read: () => Promise<T>, onUnauthorized: () => void): Detail<T> {
  const [value, setValue] = useState<T | null>(null);
  const [missing, setMissing] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const latest = useRef({ read, onUnauthorized });
  latest.current = { read, onUnauthorized };

  const load = useCallback(async () => {
    try {
      setValue(await latest.current.read());
      setError(null);
    } catch (err) {
      if (isStatus(err, 401)) return latest.current.onUnauthorized();
      // Another tenant's is a 404 like an unknown one; a malformed id is a 400: both "not found".
      if (isStatus(err, 404, 400)) return setMissing(true);
      setError(describeError(err));
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);
  return { value, setValue, missing, error, load };
}

/** What a detail page shows instead when its thing is not the tenant's (or not at all). */
export function NotFound(props: { what: string; by: string; id: string; back: { href: string; text: string } }) {
  const { what, by, id, back } = props;
  return (
    <section>
      <h1>{what[0]?.toUpperCase() + what.slice(1)} not found</h1>
      <p role="alert">
        No {what} with {by} <span class="mono">{id}</span> for this API key.
      </p>
      <p>
        <a href={back.href}>{back.text}</a>
      </p>
    </section>
  );
}
