CREATE TABLE "api_tokens" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"hash" text NOT NULL,
	"created_at" bigint DEFAULT (extract(epoch from clock_timestamp()) * 1000000)::bigint NOT NULL,
	CONSTRAINT "api_tokens_hash_unique" UNIQUE("hash")
);
--> statement-breakpoint
CREATE TABLE "checkpoints" (
	"job_id" text NOT NULL,
	"checkpoint_id" integer NOT NULL,
	"run_id" integer NOT NULL,
	"at" bigint NOT NULL,
	"duration_micros" bigint NOT NULL,
	"then" text DEFAULT 'continue' NOT NULL,
	CONSTRAINT "checkpoints_job_id_checkpoint_id_pk" PRIMARY KEY("job_id","checkpoint_id")
);
--> statement-breakpoint
CREATE TABLE "connection_profiles" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"connector" text NOT NULL,
	"config" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"secrets" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" bigint DEFAULT (extract(epoch from clock_timestamp()) * 1000000)::bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "job_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"job_id" text NOT NULL,
	"at" bigint DEFAULT (extract(epoch from clock_timestamp()) * 1000000)::bigint NOT NULL,
	"from_state" text,
	"to_state" text NOT NULL,
	"reason" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "job_metrics" (
	"job_id" text PRIMARY KEY NOT NULL,
	"at" bigint NOT NULL,
	"metrics" jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" text PRIMARY KEY NOT NULL,
	"pipeline_id" text NOT NULL,
	"state" text DEFAULT 'Created' NOT NULL,
	"running_desired" boolean DEFAULT true NOT NULL,
	"stop_mode" text DEFAULT 'none' NOT NULL,
	"run_id" integer DEFAULT 0 NOT NULL,
	"parallelism" integer NOT NULL,
	"running_parallelism" integer,
	"tasks" integer,
	"restarts" integer DEFAULT 0 NOT NULL,
	"restart_requested" boolean DEFAULT false NOT NULL,
	"ignore_state" boolean DEFAULT false NOT NULL,
	"failure_message" text,
	"start_time" bigint,
	"finish_time" bigint,
	"owner" text,
	"lease_until" bigint,
	"worker_pid" integer,
	"output_published" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"last_heartbeat" bigint,
	"created_at" bigint DEFAULT (extract(epoch from clock_timestamp()) * 1000000)::bigint NOT NULL,
	"updated_at" bigint DEFAULT (extract(epoch from clock_timestamp()) * 1000000)::bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "pipeline_versions" (
	"pipeline_id" text NOT NULL,
	"version" integer NOT NULL,
	"query" text NOT NULL,
	"parallelism" integer NOT NULL,
	"checkpoint_interval_micros" bigint NOT NULL,
	"created_at" bigint DEFAULT (extract(epoch from clock_timestamp()) * 1000000)::bigint NOT NULL,
	CONSTRAINT "pipeline_versions_pipeline_id_version_pk" PRIMARY KEY("pipeline_id","version")
);
--> statement-breakpoint
CREATE TABLE "pipelines" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"query" text NOT NULL,
	"udfs" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"parallelism" integer DEFAULT 1 NOT NULL,
	"checkpoint_interval_micros" bigint DEFAULT 10000000 NOT NULL,
	"stop" text DEFAULT 'none' NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" bigint DEFAULT (extract(epoch from clock_timestamp()) * 1000000)::bigint NOT NULL,
	"updated_at" bigint DEFAULT (extract(epoch from clock_timestamp()) * 1000000)::bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "udfs" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"definition" text NOT NULL,
	"description" text,
	"created_at" bigint DEFAULT (extract(epoch from clock_timestamp()) * 1000000)::bigint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "checkpoints" ADD CONSTRAINT "checkpoints_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "job_events" ADD CONSTRAINT "job_events_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "job_metrics" ADD CONSTRAINT "job_metrics_job_id_jobs_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_pipeline_id_pipelines_id_fk" FOREIGN KEY ("pipeline_id") REFERENCES "public"."pipelines"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pipeline_versions" ADD CONSTRAINT "pipeline_versions_pipeline_id_pipelines_id_fk" FOREIGN KEY ("pipeline_id") REFERENCES "public"."pipelines"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "connection_profiles_name_idx" ON "connection_profiles" USING btree ("name");--> statement-breakpoint
CREATE INDEX "job_events_job_idx" ON "job_events" USING btree ("job_id","id");--> statement-breakpoint
CREATE INDEX "jobs_pipeline_idx" ON "jobs" USING btree ("pipeline_id");--> statement-breakpoint
CREATE INDEX "jobs_lease_idx" ON "jobs" USING btree ("running_desired","lease_until");--> statement-breakpoint
CREATE INDEX "pipelines_created_idx" ON "pipelines" USING btree ("created_at","id");--> statement-breakpoint
CREATE UNIQUE INDEX "udfs_name_idx" ON "udfs" USING btree ("name");