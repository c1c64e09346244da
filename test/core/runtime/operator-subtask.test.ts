/**
 * A subtask's watermark over its inputs when they end: an input at the end of
 * its data leaves the minimum (its watermark is at the end of time), while an
 * input stopped by a checkpoint keeps holding it, so nothing closes after the
 * checkpoint that stopped the job.
 */
import { describe, expect, test } from "bun:test";
import type { BarrierPort } from "../../../core/checkpoint/coordinator.ts";
import type { OperatorChain } from "../../../core/runtime/chain.ts";
import { Channel, InputGate } from "../../../core/runtime/channel.ts";
import { END_OF_TIME, type Message } from "../../../core/runtime/messages.ts";
import { OperatorSubtask } from "../../../core/runtime/operator-subtask.ts";

/** Runs a two-input subtask over the given messages (in this order) and returns the watermarks it passed on. */
async function watermarksPassedOn(messages: [channel: number, msg: Message][]): Promise<number[]> {
  const channels = [new Channel(64), new Channel(64)];
  const advanced: number[] = [];
  const chain = {
    watermark: null as number | null,
    async push() {},
    async advanceWatermark(time: number) {
      advanced.push(time);
      chain.watermark = time;
    },
    async markIdle() {},
    async snapshot() {
      return [];
    },
    async broadcast() {},
    finish() {},
    checkpointComplete() {},
  };
  const coordinator = { ack() {}, onComplete() {} };
  const subtask = new OperatorSubtask("window-0", new InputGate(channels), chain as unknown as OperatorChain, coordinator as unknown as BarrierPort);
  for (const [channel, msg] of messages) await channels[channel]!.send(msg);
  await subtask.run();
  return advanced;
}

describe("a subtask's watermark when its inputs end", () => {
  test("a stop: the inputs' ends after the barrier do not move it (the slower input held it at 100)", async () => {
    const stop = { kind: "barrier", checkpointId: 7, then: "stop" } as const;
    const passed = await watermarksPassedOn([
      [0, { kind: "watermark", time: 100 }],
      [1, { kind: "watermark", time: 500 }],
      [0, stop],
      [1, stop],
      [0, { kind: "end", stopped: true }],
      [1, { kind: "end", stopped: true }],
    ]);
    expect(passed).toEqual([100]);
  });

  test("the end of one input's data: the other input's watermark takes over", async () => {
    const passed = await watermarksPassedOn([
      [0, { kind: "watermark", time: 100 }],
      [1, { kind: "watermark", time: 500 }],
      [0, { kind: "watermark", time: END_OF_TIME }],
      [0, { kind: "end", stopped: false }],
      [1, { kind: "watermark", time: END_OF_TIME }],
      [1, { kind: "end", stopped: false }],
    ]);
    expect(passed).toEqual([100, 500, END_OF_TIME]);
  });
});
