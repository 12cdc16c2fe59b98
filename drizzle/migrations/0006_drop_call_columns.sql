ALTER TABLE "service_calls" DROP COLUMN "method";--> statement-breakpoint
ALTER TABLE "service_calls" DROP COLUMN "url";--> statement-breakpoint
ALTER TABLE "service_calls" DROP COLUMN "headers";--> statement-breakpoint
ALTER TABLE "service_calls" DROP COLUMN "updated_at";--> statement-breakpoint
ALTER TABLE "service_calls" DROP COLUMN "attempts";--> statement-breakpoint
ALTER TABLE "service_calls" DROP COLUMN "result";--> statement-breakpoint
ALTER TABLE "service_calls" DROP COLUMN "retry";--> statement-breakpoint
ALTER TABLE "service_calls" DROP COLUMN "timeout_ms";--> statement-breakpoint
ALTER TABLE "service_calls" DROP COLUMN "next_attempt_at";
