CREATE TABLE "schedules" (
	"tenant_id" text NOT NULL,
	"id" uuid NOT NULL,
	"state" jsonb NOT NULL,
	"status" text NOT NULL,
	"tags" text[] NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"version" integer NOT NULL,
	CONSTRAINT "schedules_tenant_id_id_pk" PRIMARY KEY("tenant_id","id")
);
--> statement-breakpoint
ALTER TABLE "service_calls" ADD COLUMN "schedule_id" uuid;--> statement-breakpoint
CREATE INDEX "schedules_tenant_status_created_idx" ON "schedules" USING btree ("tenant_id","status","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "schedules_tags_idx" ON "schedules" USING gin ("tags");--> statement-breakpoint
CREATE INDEX "service_calls_tenant_schedule_created_idx" ON "service_calls" USING btree ("tenant_id","schedule_id","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST) WHERE schedule_id is not null;