/**
 * A subtask fed by channels: merges its inputs, tracks the minimum watermark of
 * the inputs that are not idle, and aligns checkpoint barriers (an input that
 * delivered barrier n is blocked until every input has).
 */
import type { BarrierPort } from "../checkpoint/coordinator.ts";
import type { InputGate } from "./channel.ts";
import type { OperatorChain } from "./chain.ts";
import { END_OF_TIME } from "./messages.ts";

export class OperatorSubtask {
  private readonly inputWatermarks: (number | null)[];
  private readonly inputIdle: boolean[];
  private readonly inputEnded: boolean[];
  private aligning: { id: number; then: "continue" | "end" | "stop"; arrived: boolean[] } | null = null;
  private idleSent = false;
  private stoppedEnd = false;
  private finished = false;

  constructor(
    readonly key: string,
    private readonly gate: InputGate,
    private readonly chain: OperatorChain,
    private readonly coordinator: BarrierPort,
    /** For each channel of the gate, which input of the head operator it feeds. */
    private readonly inputOfChannel: number[] = [],
  ) {
    const n = gate.channels.length;
    this.inputWatermarks = new Array(n).fill(null);
    this.inputIdle = new Array(n).fill(false);
    this.inputEnded = new Array(n).fill(false);
    coordinator.onComplete(key, (id) => chain.checkpointComplete(id));
  }

  async run(): Promise<void> {
    for (;;) {
      const { channel, msg } = await this.gate.receive();
      switch (msg.kind) {
        case "batch":
          await this.chain.push(msg.batch, this.inputOfChannel[channel] ?? 0);
          break;
        case "watermark":
          this.inputWatermarks[channel] = msg.time;
          this.inputIdle[channel] = false;
          await this.updateWatermark();
          break;
        case "idle":
          this.inputIdle[channel] = true;
          await this.updateWatermark();
          break;
        case "barrier":
          await this.onBarrier(channel, msg.checkpointId, msg.then);
          break;
        case "end":
          this.inputEnded[channel] = true;
          if (msg.stopped) this.stoppedEnd = true;
          if (this.inputEnded.every(Boolean)) {
            // Closing waits for the job: the final checkpoint's commits may still be running.
            await this.chain.broadcast({ kind: "end", stopped: this.stoppedEnd });
            return;
          }
          await this.maybeAligned();
          // A stopped input keeps holding the watermark where it was. Nothing follows the barrier that stopped the
          // job, and dropping the input from the minimum would let the others' watermarks through: windows would
          // close after that checkpoint, and again once the job resumes from it.
          if (!msg.stopped) await this.updateWatermark();
          break;
      }
    }
  }

  private async updateWatermark(): Promise<void> {
    let min = Infinity;
    let active = 0;
    for (let i = 0; i < this.inputWatermarks.length; i++) {
      if (this.inputEnded[i] || this.inputIdle[i]) continue;
      active++;
      const wm = this.inputWatermarks[i]!;
      if (wm === null) return; // an active input has not said anything yet: hold back
      if (wm < min) min = wm;
    }
    if (active === 0) {
      if (!this.idleSent && !this.inputEnded.every(Boolean)) {
        this.idleSent = true;
        await this.chain.markIdle();
      }
      return;
    }
    this.idleSent = false;
    if (this.chain.watermark === null || min > this.chain.watermark) await this.chain.advanceWatermark(min);
    // Only the end of input moves a channel's watermark to the end of time (a stop does not): once every
    // channel's has, and the chain has flushed, nothing can reach its operators' state any more.
    if (!this.finished && min === END_OF_TIME && this.inputWatermarks.every((w) => w === END_OF_TIME)) {
      this.finished = true;
      this.chain.finish();
    }
  }

  private async onBarrier(channel: number, id: number, then: "continue" | "end" | "stop"): Promise<void> {
    if (!this.aligning) this.aligning = { id, then, arrived: new Array(this.inputEnded.length).fill(false) };
    this.aligning.arrived[channel] = true;
    this.gate.blocked[channel] = true;
    await this.maybeAligned();
  }

  private async maybeAligned(): Promise<void> {
    const a = this.aligning;
    if (!a) return;
    for (let i = 0; i < a.arrived.length; i++) if (!a.arrived[i] && !this.inputEnded[i]) return;
    this.aligning = null;
    this.coordinator.ack(this.key, a.id, await this.chain.snapshot(a.id));
    await this.chain.broadcast({ kind: "barrier", checkpointId: a.id, then: a.then });
    this.gate.blocked.fill(false);
  }
}
