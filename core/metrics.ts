import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Db } from './db';
import { flowGaugeValues } from './flow-limits';

/**
 * Prometheus metrics (ADR-0010), one registry per process. Labels are bounded: outcomes,
 * consumer names, HTTP methods, route patterns and status classes — never ids or URLs.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'punctual_process_' });

export const callsFinished = new Counter({
  name: 'punctual_calls_finished_total',
  help: 'Calls that reached a terminal status, by outcome (recorded by the worker).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const httpAttemptDuration = new Histogram({
  name: 'punctual_http_attempt_duration_seconds',
  help: 'Time from sending an HTTP attempt to its response headers (or its failure).',
  labelNames: ['result'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [registry],
});

export const timerLateness = new Histogram({
  name: 'punctual_timer_lateness_seconds',
  help: 'Start of the first attempt minus dueAt.',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

export const callbackDeliveries = new Counter({
  name: 'punctual_callback_deliveries_total',
  help: 'Callback delivery attempts recorded, by outcome: delivered (2xx), retry (another follows), failed (the last one, given up).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const callbackDeliveryDuration = new Histogram({
  name: 'punctual_callback_delivery_duration_seconds',
  help: "Time from sending a callback to its receiver's response headers (or its failure), by result.",
  labelNames: ['result'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

export const apiRequestDuration = new Histogram({
  name: 'punctual_api_request_duration_seconds',
  help: 'API request latency by method, route pattern and status class.',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  registers: [registry],
});

export const batchItemsSubmitted = new Counter({
  name: 'punctual_batch_items_total',
  help: 'Items of batch submits, by the status each was answered with (202 new, 200 replayed, 400, 422).',
  labelNames: ['status'] as const,
  registers: [registry],
});

export const eventsAppended = new Counter({
  name: 'punctual_events_appended_total',
  help: 'Events appended to the event store by this process, by type.',
  labelNames: ['type'] as const,
  registers: [registry],
});

export const consumerLagEvents = new Gauge({
  name: 'punctual_consumer_lag_events',
  help: 'Events committed but not yet handled by each log consumer (projection or workflow starter).',
  labelNames: ['consumer'] as const,
  registers: [registry],
});

export const consumerLagSeconds = new Gauge({
  name: 'punctual_consumer_lag_seconds',
  help: 'Age of the oldest event a log consumer has not handled yet (0 when caught up).',
  labelNames: ['consumer'] as const,
  registers: [registry],
});

export const outboxBacklog = new Gauge({
  name: 'punctual_outbox_backlog_events',
  help: 'Events the workflow starter has not handled yet (submits and cancels not yet handed to Temporal, and events it passes over).',
  registers: [registry],
});

export const reconcilerCallsChecked = new Counter({
  name: 'punctual_reconciler_calls_checked_total',
  help: "Unfinished calls the reconciler asked Temporal about, by what it found: live (workflow running), restarted, awaiting_starter (submitted after the starter's checkpoint), finished (the record was terminal already), completed_unfinished (a completed workflow left its call unfinished; not restarted).",
  labelNames: ['result'] as const,
  registers: [registry],
});

export const reconcilerSchedulesRestored = new Counter({
  name: 'punctual_reconciler_schedules_restored_total',
  help: 'Temporal Schedules the reconciler made again for schedules Temporal did not know (ADR-0017).',
  registers: [registry],
});

export const reconcilerWorkflowsRestarted = new Counter({
  name: 'punctual_reconciler_workflows_restarted_total',
  help: 'Workflows the reconciler started for unfinished calls, by reason: missing (Temporal does not know the workflow) or closed (terminated, failed or timed out).',
  labelNames: ['reason'] as const,
  registers: [registry],
});

export const reconcilerPassDuration = new Histogram({
  name: 'punctual_reconciler_pass_duration_seconds',
  help: 'Time one reconciler pass took over every unfinished call (passes cut short by another relay or an error included).',
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300],
  registers: [registry],
});

// Flow limits (ADR-0018). Labelled by tenant and key: series exist only for keys a tenant gave a
// limit, which bounds them by the limits defined, not by the calls.
export const flowAdmitted = new Counter({
  name: 'punctual_flow_admitted_total',
  help: 'Attempts admitted by the flow limits of a key (counted by the worker that admitted them).',
  labelNames: ['tenant', 'key'] as const,
  registers: [registry],
});

export const flowWaitDuration = new Histogram({
  name: 'punctual_flow_wait_seconds',
  help: 'How long flow limits held an attempt back before admitting it (0 when admitted at once), per key.',
  labelNames: ['tenant', 'key'] as const,
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [registry],
});

export const flowInFlight = new Gauge({
  name: 'punctual_flow_in_flight',
  help: 'Attempts holding a lease of a concurrency limit, across all workers (every worker reports the same value).',
  labelNames: ['tenant', 'key'] as const,
  registers: [registry],
});

export const flowWaiting = new Gauge({
  name: 'punctual_flow_waiting',
  help: 'Calls waiting for a flow limit, across all workers (every worker reports the same value).',
  labelNames: ['tenant', 'key'] as const,
  registers: [registry],
});

/** Refreshes the in-flight and waiting gauges from PostgreSQL every `everyMs` (they are cluster-wide). */
export function collectFlowGauges(db: Db, everyMs = 5_000): { stop(): void } {
  const refresh = async () => {
    const values = await flowGaugeValues(db);
    flowInFlight.reset();
    flowWaiting.reset();
    for (const v of values) {
      flowInFlight.set({ tenant: v.tenantId, key: v.key }, v.inFlight);
      flowWaiting.set({ tenant: v.tenantId, key: v.key }, v.waiting);
    }
  };
  const timer = setInterval(() => void refresh().catch(() => undefined), everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
