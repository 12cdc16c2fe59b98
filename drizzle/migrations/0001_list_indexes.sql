CREATE INDEX "api_keys_prefix_idx" ON "api_keys" USING btree ("prefix");--> statement-breakpoint
CREATE INDEX "service_calls_tenant_created_idx" ON "service_calls" USING btree ("tenant_id","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "service_calls_tenant_status_created_idx" ON "service_calls" USING btree ("tenant_id","status","created_at" DESC NULLS FIRST,"id" DESC NULLS FIRST);--> statement-breakpoint
CREATE INDEX "service_calls_tags_idx" ON "service_calls" USING gin ("tags");--> statement-breakpoint
CREATE INDEX "service_calls_tenant_due_idx" ON "service_calls" USING btree ("tenant_id","due_at");