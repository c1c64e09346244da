/**
 * A bounded single-producer, single-consumer queue between two subtasks. A full
 * queue makes the producer wait: that is the engine's backpressure.
 */
import type { Message } from "./messages.ts";

/** Where a subtask sends: a local channel, or one to a subtask in another process. */
export interface ChannelSink {
  send(msg: Message): Promise<void>;
  onBlocked: ((ms: number) => void) | null;
}

export class Channel implements ChannelSink {
  private items: Message[] = [];
  private head = 0;
  private spaceWaiter: (() => void) | null = null;
  /** Called when a message arrives, to wake the consuming gate. */
  onPush: (() => void) | null = null;
  /** Time the producer spent waiting for space, in ms (the backpressure metric). */
  blockedMs = 0;
  /** Told each wait for space, so the producing subtask's operators can report it. */
  onBlocked: ((ms: number) => void) | null = null;
  /** Told each take: a channel fed from another process returns credit to its sender. */
  onTake: (() => void) | null = null;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.items.length - this.head;
  }

  /** Resolves once the message is queued; waits while the queue is full. */
  async send(msg: Message): Promise<void> {
    while (this.size >= this.capacity) {
      const start = performance.now();
      await new Promise<void>((resolve) => (this.spaceWaiter = resolve));
      const waited = performance.now() - start;
      this.blockedMs += waited;
      this.onBlocked?.(waited);
    }
    this.items.push(msg);
    this.onPush?.();
  }

  /**
   * Queues a message from another process without waiting: its sender held a
   * credit for it, so there is room by construction.
   */
  deliver(msg: Message): void {
    this.items.push(msg);
    this.onPush?.();
  }

  peek(): Message | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined;
  }

  take(): Message | undefined {
    if (this.head >= this.items.length) return undefined;
    const msg = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as Message;
    // Compact now and then instead of shifting on every take.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    const waiter = this.spaceWaiter;
    if (waiter) {
      this.spaceWaiter = null;
      waiter();
    }
    this.onTake?.();
    return msg;
  }
}

/**
 * The input side of a subtask: several channels read fairly, any of which can be
 * blocked while checkpoint barriers align.
 */
export class InputGate {
  readonly blocked: boolean[];
  private wake: (() => void) | null = null;
  private next = 0;

  constructor(readonly channels: Channel[]) {
    this.blocked = channels.map(() => false);
    for (const ch of channels) {
      ch.onPush = () => {
        const w = this.wake;
        if (w) {
          this.wake = null;
          w();
        }
      };
    }
  }

  /** The next message from any unblocked channel, waiting if none has one. */
  async receive(): Promise<{ channel: number; msg: Message }> {
    for (;;) {
      const n = this.channels.length;
      for (let k = 0; k < n; k++) {
        const i = (this.next + k) % n;
        if (this.blocked[i]) continue;
        const msg = this.channels[i]!.take();
        if (msg !== undefined) {
          this.next = (i + 1) % n;
          return { channel: i, msg };
        }
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}
