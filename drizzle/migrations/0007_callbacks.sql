DROP INDEX "service_calls_live_idx";--> statement-breakpoint
ALTER TABLE "service_calls" ADD COLUMN "callback_status" text;--> statement-breakpoint
CREATE INDEX "service_calls_tenant_callback_created_idx" ON "service_calls" USING btree ("tenant_id","callback_status","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE callback_status is not null;--> statement-breakpoint
CREATE INDEX "service_calls_live_idx" ON "service_calls" USING btree ("tenant_id","id") WHERE status in ('Scheduled', 'Running') or callback_status = 'Pending';