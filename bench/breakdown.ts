import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { summarize, type Summary } from './stats';

/**
 * Where a call's time goes, from its Temporal history and the client's own clock (one machine,
 * one clock): accepted → workflow started (Punctual: the outbox relay; the baseline: its start
 * call) → first workflow task started (dispatch to the worker) → target hit (the worker's work
 * until the request is sent) → terminal status seen by the client.
 */
export interface Breakdown {
  sampled: number;
  acceptedToStarted: Summary;
  startedToFirstTask: Summary;
  firstTaskToHit: Summary;
  hitToSeen: Summary;
}

interface Timed {
  workflowId: string;
  t0: number;
  hitAt: number;
  seenAt: number;
}

export async function breakdown(client: Client, items: Timed[], sample = 40): Promise<Breakdown | undefined> {
  const step = Math.max(1, Math.floor(items.length / sample));
  const picked = items.filter((_, i) => i % step === 0).slice(0, sample);
  const rows: { a: number; b: number; c: number; d: number }[] = [];
  for (const item of picked) {
    try {
      const { events } = await client.workflow.getHandle(item.workflowId).fetchHistory();
      const started = events?.find((e) => e.workflowExecutionStartedEventAttributes != null);
      const firstTask = events?.find((e) => e.workflowTaskStartedEventAttributes != null);
      if (started?.eventTime == null || firstTask?.eventTime == null) continue;
      const s = tsToMs(started.eventTime);
      const f = tsToMs(firstTask.eventTime);
      rows.push({ a: s - item.t0, b: f - s, c: item.hitAt - f, d: item.seenAt - item.hitAt });
    } catch {
      // Gone or unreadable: skip it.
    }
  }
  if (rows.length === 0) return undefined;
  return {
    sampled: rows.length,
    acceptedToStarted: summarize(rows.map((r) => r.a)),
    startedToFirstTask: summarize(rows.map((r) => r.b)),
    firstTaskToHit: summarize(rows.map((r) => r.c)),
    hitToSeen: summarize(rows.map((r) => r.d)),
  };
}

/**
 * For a late timer: when (relative to dueAt, ms) its workflow was started, its timer fired, the
 * worker took the task that followed, and the target was hit.
 */
export interface LateTimer {
  lateMs: number;
  startedMs: number | undefined;
  timerFiredMs: number | undefined;
  taskStartedMs: number | undefined;
  /** Every history event from the timer's firing on: `TYPE@ms` relative to dueAt. */
  timeline: string[];
}

export async function lateTimers(
  client: Client,
  items: { workflowId: string; dueAtMs: number; lateMs: number }[],
  count = 10,
): Promise<LateTimer[]> {
  const latest = [...items].sort((a, b) => b.lateMs - a.lateMs).slice(0, count);
  const out: LateTimer[] = [];
  for (const item of latest) {
    try {
      const events = (await client.workflow.getHandle(item.workflowId).fetchHistory()).events ?? [];
      const at = (pred: (e: (typeof events)[number]) => boolean, after = -1) => {
        const e = events.find((x, i) => i > after && pred(x));
        return e?.eventTime == null ? undefined : { ms: tsToMs(e.eventTime) - item.dueAtMs, index: events.indexOf(e) };
      };
      const started = at((e) => e.workflowExecutionStartedEventAttributes != null);
      const fired = at((e) => e.timerFiredEventAttributes != null);
      const task =
        fired === undefined ? undefined : at((e) => e.workflowTaskStartedEventAttributes != null, fired.index);
      const timeline = events
        .slice(fired?.index ?? 0)
        .map(
          (e) =>
            `${String(temporal.api.enums.v1.EventType[e.eventType ?? 0]).replace(/^EVENT_TYPE_/, '')}@${e.eventTime == null ? '?' : Math.round(tsToMs(e.eventTime) - item.dueAtMs)}`,
        );
      out.push({
        lateMs: item.lateMs,
        startedMs: started?.ms,
        timerFiredMs: fired?.ms,
        taskStartedMs: task?.ms,
        timeline,
      });
    } catch {
      // Skip what cannot be read.
    }
  }
  return out;
}
