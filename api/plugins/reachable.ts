/** How long a readiness probe waits for one dependency: a probe must never hang. */
export const READINESS_TIMEOUT_MS = 2_000;

/** true when `work` succeeds within READINESS_TIMEOUT_MS, false when it fails or takes longer. */
export function withinTimeout(work: Promise<unknown>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), READINESS_TIMEOUT_MS);
  });
  return Promise.race([
    work.then(
      () => true,
      () => false,
    ),
    timeout,
  ]).finally(() => clearTimeout(timer));
}
