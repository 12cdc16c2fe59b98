import { sql } from 'drizzle-orm';
import type { DbOrTx } from '../core/db';
import { consumerLagEvents, consumerLagSeconds } from '../core/metrics';
import { readCheckpoint } from './relay';
import type { ConsumerDefinition } from './consumers';

interface ConsumerLag {
  consumer: string;
  events: number;
  /** Age of the oldest unhandled event; 0 when caught up. */
  seconds: number;
}

/** How far behind the log each consumer is: committed events past its checkpoint. */
export async function measureConsumerLag(db: DbOrTx, consumers: readonly string[]): Promise<ConsumerLag[]> {
  return Promise.all(
    consumers.map(async (consumer) => {
      const at = await readCheckpoint(db, consumer);
      const { rows } = await db.execute<{ events: number; seconds: number | null }>(sql`
        select count(*)::int as events,
               extract(epoch from now() - min(timestamp))::float8 as seconds
        from events
        where (tx, global_position) > (${at.tx}::xid8, ${at.globalPosition}::bigint)
          and tx < pg_snapshot_xmin(pg_current_snapshot())`);
      const row = rows[0];
      return { consumer, events: row?.events ?? 0, seconds: Math.max(0, row?.seconds ?? 0) };
    }),
  );
}

/** Refreshes the lag gauges every `intervalMs`; returns a stop function. */
export function watchConsumerLag(db: DbOrTx, consumers: readonly ConsumerDefinition[], intervalMs = 2_000): () => void {
  const byName = new Map(consumers.map((c) => [c.name, c]));
  let running = false;
  const tick = () => {
    if (running) return;
    running = true;
    measureConsumerLag(
      db,
      consumers.map((c) => c.name),
    )
      .then((lags) => {
        for (const lag of lags) {
          consumerLagEvents.set({ consumer: lag.consumer }, lag.events);
          consumerLagSeconds.set({ consumer: lag.consumer }, lag.seconds);
          byName.get(lag.consumer)?.lagGauge?.set(lag.events);
        }
      })
      .catch(() => undefined)
      .finally(() => (running = false));
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
