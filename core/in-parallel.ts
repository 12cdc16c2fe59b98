/**
 * Runs `task` on every item, at most `concurrency` at once, in the items' order of starting;
 * resolves when all are done, or rejects with the first failure (the others still run out).
 */
export async function inParallel<T>(
  items: readonly T[],
  concurrency: number,
  task: (item: T, i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      for (let i = next++; i < items.length; i = next++) await task(items[i]!, i);
    }),
  );
}
