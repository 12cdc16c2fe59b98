CREATE TABLE "signing_secrets" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"tenant_id" text NOT NULL,
	"secret" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "service_calls" ADD COLUMN "retry" jsonb DEFAULT '{"maxAttempts":1,"initialIntervalMs":1000,"backoffCoefficient":2,"maxIntervalMs":60000}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "service_calls" ADD COLUMN "timeout_ms" integer DEFAULT 10000 NOT NULL;--> statement-breakpoint
ALTER TABLE "service_calls" ADD COLUMN "next_attempt_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "signing_secrets_tenant_idx" ON "signing_secrets" USING btree ("tenant_id","created_at");