/**
 * Wall-clock pacing for generator sources: events are due at `rate` per second
 * from the first call; a backlog (the reader was not polled, e.g. under
 * backpressure) is capped so the source does not burst to catch up.
 */
export class RateLimiter {
  private startMs = -1;
  private granted = 0;
  private readonly unlimited: boolean;
  private readonly perMs: number;
  private readonly maxBacklog: number;

  /** `rate` events per second; 0, negative or non-finite means no limit. */
  constructor(rate: number) {
    this.unlimited = !(rate > 0) || !Number.isFinite(rate);
    this.perMs = rate / 1000;
    // At most ~100 ms of events (and at least one) in one go after a stall.
    this.maxBacklog = Math.max(1, Math.ceil(rate * 0.1));
  }

  /** Takes up to `max` events that are due now; 0 when none is. */
  take(max: number): number {
    if (this.unlimited || max <= 0) return max > 0 ? max : 0;
    const now = performance.now();
    if (this.startMs < 0) this.startMs = now;
    // Event k (from 0) is due k / rate seconds after the start.
    let due = Math.floor((now - this.startMs) * this.perMs) + 1 - this.granted;
    if (due > this.maxBacklog) {
      // Forget the backlog beyond the cap: move the origin forward.
      this.startMs += (due - this.maxBacklog) / this.perMs;
      due = this.maxBacklog;
    }
    if (due <= 0) return 0;
    const n = due < max ? due : max;
    this.granted += n;
    return n;
  }

  /** Milliseconds until the next event is due, capped at `cap`. */
  waitMs(cap = 50): number {
    if (this.unlimited || this.startMs < 0) return 0;
    const next = this.startMs + this.granted / this.perMs;
    const wait = next - performance.now();
    return wait <= 0 ? 0 : wait > cap ? cap : wait;
  }
}

/** Sleeps `ms` milliseconds, or less if `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
