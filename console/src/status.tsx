export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge badge-${status.toLowerCase()}`}>{status}</span>;
}

/** An error the person should read now (announced by screen readers). */
export function Alert({ text }: { text: string | null }) {
  return text === null ? null : (
    <p role="alert" class="error">
      {text}
    </p>
  );
}

/** What an action did (announced politely). */
export function Notice({ text }: { text: string | null }) {
  return text === null ? null : (
    <p role="status" class="notice">
      {text}
    </p>
  );
}

/**
 * Previous/next over a keyset list: `cursors` holds the cursor of every page up to this one
 * (undefined for the first), so Previous pops and Next pushes the page's `nextCursor`.
 */
export function Pager(props: {
  cursors: (string | undefined)[];
  setCursors: (cursors: (string | undefined)[]) => void;
  nextCursor: string | null;
}) {
  const { cursors, setCursors, nextCursor } = props;
  return (
    <nav class="pager" aria-label="Pages">
      <button
        type="button"
        class="secondary"
        disabled={cursors.length <= 1}
        onClick={() => setCursors(cursors.slice(0, -1))}
      >
        Previous page
      </button>
      <span>Page {cursors.length}</span>
      <button
        type="button"
        class="secondary"
        disabled={nextCursor === null}
        onClick={() => nextCursor !== null && setCursors([...cursors, nextCursor])}
      >
        Next page
      </button>
    </nav>
  );
}
