import { createHash, randomUUID } from 'node:crypto';
import { idempotencyKeys } from '../drizzle/schema';
import { listServiceCalls, type ListFilter } from '../projections/service-calls';
import { newStreamEnvelope, nextEventEnvelope, recordAppended, replayFingerprint, type Deps } from './commands';
import { decide, StateConflictError, type Command } from './decider';
import type { NewEvent, RequestSecrets, StoredEvent } from './events';
import { appendOneEach, readStreams, type StreamAppend } from './event-store';
import { serviceCallIdFor, streamIdFor } from './ids';
import { fold, TERMINAL_STATUSES, type ServiceCallState } from './service-call';

/**
 * Bulk cancel and bulk replay (issue 13): the calls a filter matches in the read model (the
 * caller's tenant only), each decided by core/decider.ts on its own stream, appended in batches
 * of one statement per 1,000 calls. A call whose stream moved on since it was read loses its
 * row's version race and is skipped, never half-done.
 */

export const BULK_LIMIT_MAX = 10_000;
/** Calls read, decided and appended together. */
const CHUNK = 1_000;

export interface BulkResult {
  /** Calls the filter matched (up to the limit), whatever their status. */
  matched: number;
  /** Calls changed by this request: cancelled, or replayed. */
  affected: number;
  /** Bulk cancel: the calls cancelled. Bulk replay: the new calls. */
  ids: string[];
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function matching(deps: Deps, tenantId: string, filter: ListFilter): Promise<{ id: string; status: string }[]> {
  const { items } = await listServiceCalls(deps.db, tenantId, filter);
  return items;
}

/** Decides `command` on each call's stream; refused ones are skipped. */
function decideEach(
  tenantId: string,
  ids: readonly string[],
  streams: Map<string, StoredEvent[]>,
  command: (state: ServiceCallState) => Command,
): { state: ServiceCallState; history: StoredEvent[]; body: ReturnType<typeof decide>[number] }[] {
  const out = [];
  for (const id of ids) {
    const history = streams.get(streamIdFor(tenantId, id)) ?? [];
    const state = fold(history);
    if (state === undefined) continue;
    try {
      const [body] = decide(command(state), state);
      if (body !== undefined) out.push({ state, history, body });
    } catch (err) {
      if (!(err instanceof StateConflictError)) throw err;
    }
  }
  return out;
}

export async function bulkCancel(
  deps: Deps,
  tenantId: string,
  filter: ListFilter,
  correlationId: string,
): Promise<BulkResult> {
  const now = (deps.now ?? (() => new Date()))();
  const matched = await matching(deps, tenantId, filter);
  const candidates = matched.filter((c) => c.status === 'Scheduled').map((c) => c.id);
  const ids: string[] = [];
  for (const part of chunks(candidates, CHUNK)) {
    const streams = await readStreams(
      deps.db,
      part.map((id) => streamIdFor(tenantId, id)),
    );
    const appends: StreamAppend[] = decideEach(tenantId, part, streams, () => ({ type: 'Cancel', source: 'api' })).map(
      ({ state, history, body }) => ({
        streamId: streamIdFor(tenantId, state.id),
        expectedVersion: state.version,
        event: { ...nextEventEnvelope(state, history, randomUUID(), now), correlationId, ...body },
      }),
    );
    const stored = await appendOneEach(deps.db, appends);
    recordAppended(deps, stored);
    ids.push(...stored.map((e) => e.aggregateId));
  }
  if (ids.length > 0) deps.notifier.poke();
  return { matched: matched.length, affected: ids.length, ids };
}

/**
 * The idempotency key of the replay of `originalId` made by a bulk request: derived from the
 * request's own key (its Idempotency-Key, or a digest of its body when it has none), so the same
 * bulk request again finds every replay it made and makes none twice.
 */
export function bulkReplayKey(requestKey: string, originalId: string): string {
  const digest = createHash('sha256').update(requestKey).digest('base64url').slice(0, 22);
  return `bulk-replay:${digest}:${originalId}`;
}

export async function bulkReplay(
  deps: Deps,
  tenantId: string,
  filter: ListFilter,
  requestKey: string,
  correlationId: string,
): Promise<BulkResult> {
  const now = (deps.now ?? (() => new Date()))();
  const matched = await matching(deps, tenantId, filter);
  const candidates = matched
    .filter((c) => TERMINAL_STATUSES.has(c.status as ServiceCallState['status']))
    .map((c) => c.id);
  const ids: string[] = [];
  for (const part of chunks(candidates, CHUNK)) {
    const streams = await readStreams(
      deps.db,
      part.map((id) => streamIdFor(tenantId, id)),
    );
    const planned = decideEach(tenantId, part, streams, (state) => {
      const key = bulkReplayKey(requestKey, state.id);
      const first = streams.get(streamIdFor(tenantId, state.id))?.[0];
      const sealed = first?.type === 'ServiceCallSubmitted' ? first.data.secrets : null;
      const newStream = streamIdFor(tenantId, serviceCallIdFor(tenantId, key));
      const secrets =
        sealed === null
          ? null
          : deps.keyring.seal(deps.keyring.open<RequestSecrets>(sealed, streamIdFor(tenantId, state.id)), newStream);
      return { type: 'Replay', now, dueAt: undefined, secrets, idempotencyKey: key, callback: undefined };
    }).map(({ state, history, body }) => {
      const key = bulkReplayKey(requestKey, state.id);
      const id = serviceCallIdFor(tenantId, key);
      const event = {
        ...newStreamEnvelope({ tenantId, id, now, correlationId, causedBy: history.at(-1) }),
        ...body,
      } as NewEvent;
      return { key, id, originalId: state.id, event };
    });
    if (planned.length === 0) continue;
    const stored = await deps.db.transaction(async (tx) => {
      // A replay this request made before keeps its row: only the new rows get an event.
      const inserted = await tx
        .insert(idempotencyKeys)
        .values(
          planned.map((p) => ({
            tenantId,
            key: p.key,
            serviceCallId: p.id,
            fingerprint: replayFingerprint(deps, p.originalId, undefined),
          })),
        )
        .onConflictDoNothing()
        .returning({ id: idempotencyKeys.serviceCallId });
      const fresh = new Set(inserted.map((r) => r.id));
      return appendOneEach(
        tx,
        planned
          .filter((p) => fresh.has(p.id))
          .map((p) => ({ streamId: streamIdFor(tenantId, p.id), expectedVersion: 0, event: p.event })),
      );
    });
    recordAppended(deps, stored);
    ids.push(...stored.map((e) => e.aggregateId));
  }
  if (ids.length > 0) deps.notifier.poke();
  return { matched: matched.length, affected: ids.length, ids };
}
