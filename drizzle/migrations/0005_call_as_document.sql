-- The read model keeps each call as one document (ADR-0007): filled here from the columns that
-- held it until now, which 0006 drops. Instants are written as the projection writes them
-- (JavaScript's toISOString: milliseconds, Z).
ALTER TABLE "service_calls" ADD COLUMN "state" jsonb;--> statement-breakpoint
UPDATE "service_calls" SET "state" = jsonb_build_object(
  'tenantId', "tenant_id",
  'id', "id",
  'status', "status",
  'request', jsonb_build_object('method', "method", 'url', "url", 'headers', "headers"),
  'dueAt', to_char("due_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  'tags', to_jsonb("tags"),
  'retry', "retry",
  'timeoutMs', "timeout_ms",
  'nextAttemptAt', to_char("next_attempt_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  'createdAt', to_char("created_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  'updatedAt', to_char("updated_at" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
  'attempts', "attempts",
  'result', "result",
  'replayOf', "replay_of",
  'version', "version"
);--> statement-breakpoint
ALTER TABLE "service_calls" ALTER COLUMN "state" SET NOT NULL;
