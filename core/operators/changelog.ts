/**
 * Primary-key normalisation of a change stream (what Flink calls
 * ChangelogNormalize): the last row of every key is kept, so each update or
 * delete retracts exactly the row emitted before, whatever the record's
 * `before` holds (PostgreSQL's default replica identity sends none for updates
 * and only the key for deletes). An insert of a key already present (a
 * snapshot replayed after a restart) becomes an update; a delete of an unknown
 * key, or an update to an identical row, changes nothing.
 */
import { RowOp, type Batch, type Row } from "../plugin-api/index.ts";
import { hashValues, keysEqual, rowsEqual } from "../state/hash.ts";
import type { KeyedTable, StateEntry } from "../state/tables.ts";
import { END_OF_TIME } from "../runtime/messages.ts";
import type { Collector, Operator, OperatorContext } from "./operator.ts";
import type { RowFn } from "./window-aggregate.ts";

export class ChangelogNormalize implements Operator {
  readonly name = "changelog";
  private rows!: KeyedTable<Row>;
  private readonly scratch: unknown[];

  constructor(
    private readonly keys: RowFn[],
    /** µs a key's row is kept after its last change in event time (SET updating_ttl); forgotten rows are not retracted. */
    private readonly ttl?: number,
  ) {
    this.scratch = new Array(keys.length);
  }

  open(ctx: OperatorContext): void {
    this.rows = ctx.state.keyed<Row>("rows", undefined, this.ttl ? { expiryGranularity: this.ttl / 16 } : {});
  }

  onWatermark(time: number): void {
    if (this.ttl && time < END_OF_TIME) this.rows.expire(time - this.ttl, () => true);
  }

  process(batch: Batch, out: Collector): void | Promise<void> {
    const { rows, times, ops } = batch;
    const outRows: Row[] = [];
    const outTimes: number[] = [];
    const outOps: RowOp[] = [];
    const outBefore: (Row | null)[] = [];
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const t = times[i]!;
      const op = ops?.[i] ?? RowOp.Insert;
      const old = op === RowOp.Update ? (batch.before?.[i] ?? null) : null;
      if (old) {
        // An update that changes the key deletes the old key's row.
        const hash = this.keyOf(old, t);
        const previous = this.rows.get(hash, this.scratch);
        this.keyOf(row, t);
        if (previous && !keysEqual(previous.key, this.scratch)) this.remove(previous, t, outRows, outTimes, outOps, outBefore);
      }
      const hash = this.keyOf(row, t);
      const entry = this.rows.get(hash, this.scratch);
      if (op === RowOp.Delete) {
        if (entry) this.remove(entry, t, outRows, outTimes, outOps, outBefore);
        continue;
      }
      if (entry) {
        if (rowsEqual(entry.value, row)) continue;
        outRows.push(row);
        outOps.push(RowOp.Update);
        outBefore.push(entry.value);
        this.rows.modify(entry);
        entry.value = row;
        if (this.ttl) this.rows.setTime(entry, t);
      } else {
        const created = this.rows.update(hash, this.scratch, () => row);
        if (this.ttl) this.rows.setTime(created, t);
        outRows.push(row);
        outOps.push(RowOp.Insert);
        outBefore.push(null);
      }
      outTimes.push(t);
    }
    if (outRows.length > 0) return out.emit({ rows: outRows, times: outTimes, ops: outOps, before: outBefore });
  }

  /** Puts the key of `row` in scratch and returns its hash. */
  private keyOf(row: Row, time: number): number {
    for (let k = 0; k < this.keys.length; k++) this.scratch[k] = this.keys[k]!(row, time);
    return hashValues(this.scratch);
  }

  private remove(entry: StateEntry<Row>, t: number, rows: Row[], times: number[], ops: RowOp[], before: (Row | null)[]): void {
    rows.push(entry.value);
    ops.push(RowOp.Delete);
    before.push(entry.value);
    times.push(t);
    this.rows.delete(entry);
  }
}
