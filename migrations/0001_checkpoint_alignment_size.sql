ALTER TABLE "checkpoints" ADD COLUMN "alignment_micros" bigint;--> statement-breakpoint
ALTER TABLE "checkpoints" ADD COLUMN "size_bytes" bigint;