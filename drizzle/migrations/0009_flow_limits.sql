CREATE TABLE "flow_leases" (
	"tenant_id" text NOT NULL,
	"key" text NOT NULL,
	"service_call_id" uuid NOT NULL,
	"acquired_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "flow_leases_tenant_id_key_service_call_id_pk" PRIMARY KEY("tenant_id","key","service_call_id")
);
--> statement-breakpoint
CREATE TABLE "flow_limits" (
	"tenant_id" text NOT NULL,
	"key" text NOT NULL,
	"rate_per_second" double precision,
	"burst" integer,
	"concurrency" integer,
	"tokens" double precision DEFAULT 0 NOT NULL,
	"refilled_at" timestamp with time zone DEFAULT now() NOT NULL,
	"reserved_until" timestamp with time zone,
	"hold_ms" double precision,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "flow_limits_tenant_id_key_pk" PRIMARY KEY("tenant_id","key")
);
--> statement-breakpoint
CREATE TABLE "flow_waiting" (
	"tenant_id" text NOT NULL,
	"key" text NOT NULL,
	"service_call_id" uuid NOT NULL,
	"due_at" timestamp with time zone NOT NULL,
	"since" timestamp with time zone NOT NULL,
	"wake_at" timestamp with time zone NOT NULL,
	"slot_at" timestamp with time zone,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "flow_waiting_tenant_id_key_service_call_id_pk" PRIMARY KEY("tenant_id","key","service_call_id")
);
--> statement-breakpoint
CREATE INDEX "flow_leases_call_idx" ON "flow_leases" USING btree ("tenant_id","service_call_id");--> statement-breakpoint
CREATE INDEX "flow_waiting_order_idx" ON "flow_waiting" USING btree ("tenant_id","key","due_at","service_call_id");--> statement-breakpoint
CREATE INDEX "flow_waiting_call_idx" ON "flow_waiting" USING btree ("tenant_id","service_call_id");