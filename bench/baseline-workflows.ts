import { proxyActivities, sleep } from '@temporalio/workflow';
// Type-only: the bundle never loads activity code.
import type { BaselineActivities } from './baseline-worker';

/**
 * The benchmark's baseline: the least a Temporal application can do for "call this URL now or
 * at T" — one workflow, an optional durable sleep, one activity making the HTTP call. No event
 * store, no projection, no API. Punctual's figures are reported as ratios to this one, measured
 * on the same server in the same run.
 */

const { httpCall } = proxyActivities<BaselineActivities>({
  startToCloseTimeout: '70 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', maximumAttempts: 5 },
});

export async function baselineCall(input: { url: string; dueAt?: string }): Promise<number> {
  if (input.dueAt !== undefined) {
    const wait = new Date(input.dueAt).getTime() - Date.now();
    if (wait > 0) await sleep(wait);
  }
  return httpCall(input.url);
}
