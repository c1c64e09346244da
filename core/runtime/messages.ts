/**
 * What travels between subtasks. Data, watermarks and checkpoint barriers share
 * one channel so their order is the order the upstream produced them in.
 */
import type { Batch } from "../plugin-api/index.ts";

/** The watermark that closes every window: end of input. */
export const END_OF_TIME = Number.MAX_SAFE_INTEGER;

export type Message =
  | { kind: "batch"; batch: Batch }
  /** No record at or before `time` (µs) will follow on this channel. */
  | { kind: "watermark"; time: number }
  /** The upstream is idle: ignore this channel's watermark until it sends again. */
  | { kind: "idle" }
  /**
   * Checkpoint barrier. `then` says what follows it: nothing special, the end of a
   * bounded input (the final checkpoint), or a stop requested by the user.
   */
  | { kind: "barrier"; checkpointId: number; then: "continue" | "end" | "stop" }
  /** The upstream has finished (after a barrier whose `then` was "end" or "stop"). */
  | { kind: "end"; stopped: boolean };
