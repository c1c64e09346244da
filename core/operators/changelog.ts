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
import { KeyedMap, type KeyedEntry } from "../state/keyed-map.ts";
import type { Collector, Operator, OperatorContext } from "./operator.ts";
import type { RowFn } from "./window-aggregate.ts";

const STATE_VERSION = 1;

export class ChangelogNormalize implements Operator {
  readonly name = "changelog";
  private readonly rows = new KeyedMap<Row>();
  private readonly scratch: unknown[];

  constructor(private readonly keys: RowFn[]) {
    this.scratch = new Array(keys.length);
  }

  open(ctx: OperatorContext, restored: unknown[] | undefined): void {
    for (const s of restored ?? []) {
      if (!s) continue;
      const st = s as { version: number; rows: [number, unknown[], Row][] };
      if (st.version !== STATE_VERSION) throw new Error(`changelog state version ${st.version} is not supported`);
      for (const [hash, key, row] of st.rows) {
        if (hash % ctx.parallelism === ctx.subtaskIndex) this.rows.getOrCreate(hash, key, () => row);
      }
    }
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
        entry.value = row;
      } else {
        this.rows.getOrCreate(hash, this.scratch, () => row);
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

  private remove(entry: KeyedEntry<Row>, t: number, rows: Row[], times: number[], ops: RowOp[], before: (Row | null)[]): void {
    rows.push(entry.value);
    ops.push(RowOp.Delete);
    before.push(entry.value);
    times.push(t);
    this.rows.delete(entry);
  }

  snapshot(): unknown {
    return { version: STATE_VERSION, rows: [...this.rows.entries()].map((e) => [e.hash, e.key, e.value]) };
  }
}
