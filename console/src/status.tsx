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
