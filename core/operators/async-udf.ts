/**
 * Calls async UDFs for a batch's rows, concurrently up to each UDF's
 * `allowedInFlight`, and appends the results as columns. A batch is finished
 * before the next message is taken, so no call is ever in flight at a
 * checkpoint barrier: a restore replays the input of unfinished calls, which is
 * what makes the results exactly-once. Ordered UDFs emit in input order as the
 * completed prefix grows; unordered ones emit rows as soon as all their calls
 * complete. A call that throws or times out fails the job naming the UDF and
 * the row, or drops the row (counted as a bad record) under bad_data = 'drop'.
 */
import type { AsyncUdfOptions, Batch, Field, Row } from "../plugin-api/index.ts";
import { describeRow } from "./describe-row.ts";
import type { Collector, Operator, OperatorContext } from "./operator.ts";
import type { RowFn } from "./window-aggregate.ts";

export interface AsyncCall {
  name: string;
  fn: (...args: any[]) => unknown;
  args: RowFn[];
  strict: boolean;
  options: Required<AsyncUdfOptions>;
}

/** Emit completed rows in chunks of at least this many (or at the end of the batch). */
const EMIT_CHUNK = 256;

class CallFailure extends Error {}

export class AsyncUdfOperator implements Operator {
  readonly name = "async_udf";
  private ctx!: OperatorContext;
  private readonly ordered: boolean;

  constructor(
    private readonly calls: AsyncCall[],
    private readonly badData: "fail" | "drop",
    private readonly inputFields: Field[],
  ) {
    // Unordered only when every UDF allows it: one ordered UDF orders the row.
    this.ordered = calls.some((c) => c.options.ordered);
  }

  open(ctx: OperatorContext): void {
    this.ctx = ctx;
  }

  private async call(c: AsyncCall, row: Row, time: number): Promise<unknown> {
    const args = c.args.map((a) => a(row, time));
    if (c.strict && args.some((a) => a === null || a === undefined)) return null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CallFailure(`timed out after ${c.options.timeoutMs} ms (async.timeoutMs)`)), c.options.timeoutMs);
    });
    try {
      const value = await Promise.race([Promise.resolve().then(() => c.fn(...args)), timeout]);
      return value === undefined ? null : value;
    } catch (err) {
      throw new CallFailure(err instanceof CallFailure ? err.message : `threw: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async process(batch: Batch, out: Collector): Promise<void> {
    const { rows, times } = batch;
    const n = rows.length;
    // Per row: undefined while calls are pending, null when dropped, else the output row.
    const results: (Row | null | undefined)[] = new Array(n);
    const pending = new Array<number>(n).fill(this.calls.length);
    const values: unknown[][] = rows.map(() => new Array(this.calls.length));
    const completed: number[] = []; // rows finished, in completion order (unordered emission)
    let failure: Error | null = null;
    let running = 0;
    const signal = new Signal();

    const settle = (i: number) => {
      if (--pending[i]! > 0) return;
      if (results[i] !== null) results[i] = [...rows[i]!, ...values[i]!];
      completed.push(i);
      signal.raise();
    };
    this.calls.forEach((c, j) => {
      let next = 0;
      const worker = async () => {
        while (next < n && !failure) {
          const i = next++;
          if (results[i] !== null) {
            try {
              values[i]![j] = await this.call(c, rows[i]!, times[i]!);
            } catch (err) {
              const message = `async UDF ${c.name}() ${(err as Error).message} on the row ${describeRow(rows[i]!, this.inputFields)}`;
              if (this.badData === "fail") {
                failure ??= new Error(`${message}. Fix the UDF or its input, or set bad_data = 'drop' on the source table to skip and count such rows`);
                signal.raise();
                return;
              }
              this.ctx.metrics.badRecords++;
              if (this.ctx.metrics.badRecords <= 3) this.ctx.log(`dropped a row: ${message}`);
              results[i] = null;
            }
          }
          settle(i);
        }
      };
      for (let k = 0; k < Math.min(c.options.allowedInFlight, n); k++) {
        running++;
        void worker().finally(() => {
          running--;
          signal.raise();
        });
      }
    });
    if (running === 0) return;

    let emitted = 0; // ordered: rows [0, emitted) are out
    for (;;) {
      await signal.wait();
      if (failure) throw failure;
      const finished = running === 0;
      const ready: Row[] = [];
      const readyTimes: number[] = [];
      const take = (i: number) => {
        if (results[i]) {
          ready.push(results[i]!);
          readyTimes.push(times[i]!);
        }
      };
      if (this.ordered) {
        let k = emitted;
        while (k < n && results[k] !== undefined) k++;
        if (k - emitted >= EMIT_CHUNK || (finished && k > emitted)) {
          for (let i = emitted; i < k; i++) take(i);
          emitted = k;
        }
      } else if (completed.length >= EMIT_CHUNK || finished) {
        for (const i of completed.splice(0)) take(i);
      }
      if (ready.length > 0) await out.emit({ rows: ready, times: readyTimes });
      if (finished) return;
    }
  }
}

/** A wake-up that is not lost when raised before anyone waits. */
class Signal {
  private raised = false;
  private waiter: (() => void) | null = null;
  raise(): void {
    this.raised = true;
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
  wait(): Promise<void> {
    if (this.raised) {
      this.raised = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.waiter = () => {
        this.raised = false;
        resolve();
      };
    });
  }
}
