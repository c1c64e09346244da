/**
 * UNNEST in the SELECT list: each input row becomes one row per element of an
 * array, [...row, element]; a NULL or empty array gives no row (DataFusion's
 * unnest). Over an updating input a change is taken apart into the deletes of
 * the old row's elements and the inserts of the new row's.
 */
import { RowOp, type Batch, type Row } from "../plugin-api/index.ts";
import type { Collector, Operator } from "./operator.ts";
import type { RowFn } from "./window-aggregate.ts";

export class UnnestOperator implements Operator {
  readonly name = "unnest";

  constructor(private readonly array: RowFn) {}

  process(batch: Batch, out: Collector): void | Promise<void> {
    const { rows, times, ops, before } = batch;
    const outRows: Row[] = [];
    const outTimes: number[] = [];
    const outOps: RowOp[] = [];
    const expand = (row: Row, time: number, op: RowOp) => {
      const values = this.array(row, time);
      if (!Array.isArray(values)) return;
      for (const v of values) {
        outRows.push([...row, v ?? null]);
        outTimes.push(time);
        outOps.push(op);
      }
    };
    for (let i = 0; i < rows.length; i++) {
      const op = ops?.[i] ?? RowOp.Insert;
      const t = times[i]!;
      if (op === RowOp.Update) {
        if (before?.[i]) expand(before[i]!, t, RowOp.Delete);
        expand(rows[i]!, t, RowOp.Insert);
      } else if (op === RowOp.Delete) expand(before?.[i] ?? rows[i]!, t, RowOp.Delete);
      else expand(rows[i]!, t, RowOp.Insert);
    }
    if (outRows.length === 0) return;
    const result: Batch = { rows: outRows, times: outTimes };
    if (ops) {
      result.ops = outOps;
      result.before = outRows.map((r, i) => (outOps[i] === RowOp.Delete ? r : null));
    }
    return out.emit(result);
  }
}
