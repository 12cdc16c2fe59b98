import { useLayoutEffect, useRef, useState } from 'preact/hooks';

interface Props {
  /** What is deleted, as the accessible names say it: `flow limit customer:42`. */
  what: string;
  /** The question beside the confirm button: what the delete does and does not do. */
  question: string;
  busy: boolean;
  onConfirm: () => void;
}

/**
 * Delete behind a confirm step in place (no dialog): the confirm button takes the focus, Escape
 * or "Keep" puts it back on "Delete". Busy buttons are aria-disabled, not disabled: a disabled
 * button would drop the focus.
 */
export function ConfirmDelete({ what, question, busy, onConfirm }: Props) {
  const [confirming, setConfirming] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  const deleteRef = useRef<HTMLButtonElement>(null);
  const refocus = useRef(false);
  // Moved as soon as the buttons are in the page, before it paints.
  useLayoutEffect(() => {
    if (confirming) confirmRef.current?.focus();
    else if (refocus.current) deleteRef.current?.focus();
    refocus.current = false;
  }, [confirming]);
  const keep = () => {
    refocus.current = true;
    setConfirming(false);
  };

  if (confirming) {
    return (
      <span class="confirm" role="group" aria-label={`Delete ${what}?`}>
        <span>{question}</span>
        <button
          type="button"
          ref={confirmRef}
          class="danger"
          aria-disabled={busy}
          aria-label={`Confirm delete of ${what}`}
          onKeyDown={(e) => e.key === 'Escape' && keep()}
          onClick={() => !busy && onConfirm()}
        >
          Confirm delete
        </button>
        <button type="button" class="secondary" onClick={keep}>
          Keep
        </button>
      </span>
    );
  }
  return (
    <button
      type="button"
      class="secondary"
      ref={deleteRef}
      aria-disabled={busy}
      aria-label={`Delete ${what}`}
      onClick={() => setConfirming(true)}
    >
      Delete
    </button>
  );
}
