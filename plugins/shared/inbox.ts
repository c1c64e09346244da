/**
 * The queue between a push-based client (MQTT, AMQP, NATS, SSE, WebSocket
 * callbacks) and a source reader's `poll`: the client pushes, poll takes what
 * is there or waits briefly for the first item, so poll never blocks the
 * engine for long. `full` tells clients that can pause (an iterator pump)
 * when to stop; `failed` carries an error poll rethrows, so a broken
 * connection fails the job instead of going silent.
 */
export class Inbox<T> {
  private items: T[] = [];
  private head = 0;
  private wake: (() => void) | null = null;
  private roomWaiters: (() => void)[] = [];
  private error: Error | null = null;

  constructor(private readonly high = 20_000) {}

  get size(): number {
    return this.items.length - this.head;
  }

  get full(): boolean {
    return this.size >= this.high;
  }

  push(item: T): void {
    this.items.push(item);
    if (this.wake) {
      const w = this.wake;
      this.wake = null;
      w();
    }
  }

  /** Poll rethrows this (once the items before it are taken). */
  fail(error: Error): void {
    this.error ??= error;
    this.wake?.();
  }

  get failed(): Error | null {
    return this.error;
  }

  /** Resolves once the inbox is below its high mark. */
  room(): Promise<void> {
    if (!this.full) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  /** Up to `max` items; when empty, waits up to `waitMs` for one. */
  async take(max: number, waitMs: number): Promise<T[]> {
    if (this.size === 0 && !this.error && waitMs > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, waitMs);
      });
      clearTimeout(timer);
      this.wake = null;
    }
    if (this.size === 0 && this.error) throw this.error;
    const n = Math.min(max, this.size);
    const out = this.items.slice(this.head, this.head + n);
    this.head += n;
    if (this.head > 4096 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    if (!this.full && this.roomWaiters.length > 0) {
      const waiters = this.roomWaiters;
      this.roomWaiters = [];
      for (const w of waiters) w();
    }
    return out;
  }
}
