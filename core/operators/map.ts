/** Filter and projection, compiled to one loop per batch by the expression compiler. */
import type { Batch, Field } from "../plugin-api/index.ts";
import { describeRow } from "./describe-row.ts";
import type { Collector, Operator } from "./operator.ts";

export class MapOperator implements Operator {
  constructor(
    readonly name: string,
    private readonly map: (batch: Batch) => Batch,
    /** The input's columns, to name the values of a row an expression fails on. */
    private readonly inputFields: Field[] = [],
  ) {}

  process(batch: Batch, out: Collector): void | Promise<void> {
    let result: Batch;
    try {
      result = this.map(batch);
    } catch (err) {
      throw this.explain(batch, err);
    }
    if (result.rows.length > 0) return out.emit(result);
  }

  /** Finds the row the compiled loop failed on (only on the error path), so the message names the record. */
  private explain(batch: Batch, err: unknown): Error {
    const message = err instanceof Error ? err.message : String(err);
    for (let i = 0; i < batch.rows.length; i++) {
      try {
        this.map({ rows: [batch.rows[i]!], times: [batch.times[i]!], ...(batch.ops ? { ops: [batch.ops[i]!], before: [batch.before?.[i] ?? null] } : {}) });
      } catch {
        return new Error(`${message} (${this.name}, on the row ${describeRow(batch.rows[i]!, this.inputFields)})`);
      }
    }
    return err instanceof Error ? err : new Error(message);
  }
}
