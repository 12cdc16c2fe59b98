import { createHash, randomUUID } from 'node:crypto';

/**
 * Identity of calls and workflows. The API, the relay and the worker all import this module, so
 * a workflow id is a pure function of the business key everywhere.
 */

/** Fixed namespace for Punctual's name-based (v5) UUIDs. */
const PUNCTUAL_NAMESPACE = '6f1e3c1a-4b7d-5c2e-9a8f-1d2c3b4a5e6f';

function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replace(/-/g, ''), 'hex');
}

/** RFC 9562 version-5 UUID: sha1(namespace ‖ name) with version and variant bits set. */
export function uuidV5(name: string, namespace = PUNCTUAL_NAMESPACE): string {
  const hash = createHash('sha1').update(uuidBytes(namespace)).update(name, 'utf8').digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The service call id: derived from (tenant, Idempotency-Key) when a key is given, so every
 * retry of a submit names the same call and the same workflow; random otherwise.
 */
export function serviceCallIdFor(tenantId: string, idempotencyKey: string | undefined): string {
  if (idempotencyKey === undefined) return randomUUID();
  return uuidV5(`service-call\u0000${tenantId}\u0000${idempotencyKey}`);
}

export function workflowIdFor(tenantId: string, serviceCallId: string): string {
  return `service-call/${tenantId}/${serviceCallId}`;
}

export function streamIdFor(tenantId: string, serviceCallId: string): string {
  return `${tenantId}/${serviceCallId}`;
}

/** Message id of an event an activity writes: the same on every retry of that activity. */
export function deterministicMessageId(serviceCallId: string, step: string): string {
  return uuidV5(`event\u0000${serviceCallId}\u0000${step}`);
}

export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The Temporal Schedule derived from a Punctual schedule (ADR-0017). */
export function temporalScheduleIdFor(tenantId: string, scheduleId: string): string {
  return `schedule/${tenantId}/${scheduleId}`;
}

/** The workflow id prefix of a schedule's actions; Temporal appends each action's instant. */
export function scheduledRunWorkflowIdFor(tenantId: string, scheduleId: string): string {
  return `schedule-run/${tenantId}/${scheduleId}`;
}
