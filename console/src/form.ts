import { useState } from 'preact/hooks';
import { describeError, errorFields, isStatus } from './session';

/**
 * What every form of the console does around its request: it is busy while the request runs, a
 * 401 signs out, and any other refusal shows the API's message and marks the inputs of the fields
 * the API names (`inputFor` maps a field such as `body.burst` to an input), each pointing at the
 * message by `errorId`. A check the form makes before asking marks its input the same way.
 */
export function useFormState<F extends string>(
  errorId: string,
  inputFor: (field: string) => F | undefined,
  onUnauthorized: () => void,
) {
  const [error, setError] = useState<string | null>(null);
  const [invalid, setInvalid] = useState<ReadonlySet<F>>(new Set());
  const [busy, setBusy] = useState(false);
  const mark = (message: string | null, fields: readonly string[]) => {
    setError(message);
    setInvalid(new Set(fields.map(inputFor).filter((f): f is F => f !== undefined)));
  };
  return {
    error,
    busy,
    /** The form's own check refused `field` before asking the API. */
    refuse: (message: string, field: string) => mark(message, [field]),
    /** Runs the request (once at a time); on success the marks are cleared before `work` goes on. */
    run: async (work: (succeeded: () => void) => Promise<void>): Promise<void> => {
      if (busy) return;
      setBusy(true);
      try {
        await work(() => mark(null, []));
      } catch (err) {
        if (isStatus(err, 401)) onUnauthorized();
        else mark(describeError(err), errorFields(err));
      } finally {
        setBusy(false);
      }
    },
    /** The attributes of an input: invalid, and described by the message, once refused. */
    flags: (field: F) => (invalid.has(field) ? { 'aria-invalid': true as const, 'aria-describedby': errorId } : {}),
  };
}
