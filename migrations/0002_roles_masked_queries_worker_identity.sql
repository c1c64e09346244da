ALTER TABLE "api_tokens" ADD COLUMN "role" text DEFAULT 'admin' NOT NULL;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "worker_identity" text;--> statement-breakpoint
ALTER TABLE "pipeline_versions" ADD COLUMN "masked_query" text;--> statement-breakpoint
ALTER TABLE "pipelines" ADD COLUMN "masked_query" text;