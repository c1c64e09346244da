/**
 * Deduplication: `ROW_NUMBER() OVER (PARTITION BY k ORDER BY o) ... WHERE rn = 1`
 * over an append-only input whose partitions never end (Flink's deduplicate
 * operator: keep first on ORDER BY time ASC, keep last on DESC). Each partition
 * keeps only its best-ranked row, so a row costs one keyed-state read, and a
 * write only when it takes the place of the kept row.
 *
 * The result and its changelog are those of the general updating window
 * function with a limit of 1 (UpdatingWindowFunctionOperator): a row replaces
 * the kept one only when it sorts strictly before it (ties keep the earlier
 * arrival, as the stable sort does); at the end of a batch each changed
 * partition deletes the row it emitted before the batch and inserts its new one,
 * at the batch's last event time. Over an updating input a retracted kept row
 * would need the next-best row, which deduplication does not keep: the planner
 * leaves that to the general operator.
 */
import { RowOp, type Batch, type Row } from "../plugin-api/index.ts";
import { rowsEqual } from "../state/hash.ts";
import type { KeyedTable, StateEntry } from "../state/tables.ts";
import { keyComparator, type AggregateOrder } from "../expr/aggregates.ts";
import type { Collector, Operator, OperatorContext } from "./operator.ts";
import { KeyEvaluator } from "./window-aggregate.ts";
import type { WindowFunctionSpec } from "./window-function.ts";

/**
 * What a partition keeps: its best row, and the row's ORDER BY keys (evaluated
 * once, at its own event time) unless ORDER BY names columns, which the row
 * itself holds (saving an array per partition in memory and in every checkpoint).
 */
type Kept = [row: Row, keys: unknown[]] | Row;

export class DeduplicateOperator implements Operator {
  readonly name = "deduplicate";
  private kept!: KeyedTable<Kept>;
  private readonly compare: (a: unknown[], b: unknown[]) => number;
  private readonly partitionKey: KeyEvaluator;
  /** The ranking functions' values for the kept row: ROW_NUMBER, RANK and DENSE_RANK of the first row are all 1. */
  private readonly ranks: number[];
  /** The ORDER BY keys of the row at hand (copied only for a row that is kept). */
  private readonly orderScratch: unknown[];
  /** The input columns ORDER BY names, when it names only columns: the kept value is then the row alone. */
  private readonly orderColumns: number[] | null;
  /** The kept row's keys, read from it (row-only layout). */
  private readonly keptScratch: unknown[];

  constructor(private readonly spec: WindowFunctionSpec) {
    if (spec.limit?.n !== 1 || spec.limit.by !== "row_number" || !spec.functions.every((f) => f.kind === "row_number" || f.kind === "rank" || f.kind === "dense_rank")) {
      throw new Error("deduplication keeps the first row by ROW_NUMBER() and appends ranking functions only");
    }
    this.compare = keyComparator(spec.order.map((o): AggregateOrder => ({ desc: o.desc, nullsFirst: o.nullsFirst })));
    this.partitionKey = new KeyEvaluator(spec.partition);
    this.ranks = spec.functions.map(() => 1);
    this.orderScratch = new Array(spec.order.length);
    this.keptScratch = new Array(spec.order.length);
    this.orderColumns = spec.order.every((o) => o.column !== undefined) ? spec.order.map((o) => o.column!) : null;
  }

  open(ctx: OperatorContext): void {
    this.kept = ctx.state.keyed<Kept>("kept");
  }

  /** The kept row with its ranking values; the row itself when the query reads none (the planner drops unread ones). */
  private output(row: Row): Row {
    const ranks = this.ranks;
    return ranks.length === 0 ? row : ranks.length === 1 ? [...row, 1] : row.concat(ranks);
  }

  process(batch: Batch, out: Collector): void | Promise<void> {
    const { rows, times, ops } = batch;
    if (ops?.some((op) => op !== RowOp.Insert)) throw new Error("deduplication got a retraction; the planner routes updating inputs to the general window function operator");
    const order = this.spec.order;
    const key = this.partitionKey;
    const keys = this.orderScratch;
    const columns = this.orderColumns;
    const keptKeys = this.keptScratch;
    const rowOf = (kept: Kept): Row => (columns ? (kept as Row) : (kept[0] as Row));
    /** Each partition whose kept row changed in this batch → the row it kept before (null: new partition). */
    const changed = new Map<StateEntry<Kept>, Row | null>();
    const make = (): Kept => (columns ? rows[i]! : [rows[i]!, keys.slice()]);
    let i = 0;
    for (; i < rows.length; i++) {
      const t = times[i]!;
      const row = rows[i]!;
      const hash = key.eval(row, t);
      if (columns) for (let k = 0; k < columns.length; k++) keys[k] = row[columns[k]!];
      else for (let k = 0; k < order.length; k++) keys[k] = order[k]!.key(row, t);
      const entry = this.kept.get(hash, key.scratch);
      if (!entry) {
        changed.set(this.kept.update(hash, key.scratch, make), null);
        continue;
      }
      // Ties keep the earlier row: arrival order breaks them, as the general operator's stable insert does.
      const kept = entry.value;
      if (columns) {
        const keptRow = kept as Row;
        for (let k = 0; k < columns.length; k++) keptKeys[k] = keptRow[columns[k]!];
        if (this.compare(keys, keptKeys) >= 0) continue;
        if (!changed.has(entry)) changed.set(entry, keptRow);
        this.kept.modify(entry);
        entry.value = row;
      } else {
        const pair = kept as [Row, unknown[]];
        if (this.compare(keys, pair[1]) >= 0) continue;
        if (!changed.has(entry)) changed.set(entry, pair[0]);
        this.kept.modify(entry);
        pair[0] = row;
        pair[1] = keys.slice();
      }
    }
    const lastTime = rows.length > 0 ? times[rows.length - 1]! : 0;
    if (changed.size === 0) return;
    const outRows: Row[] = [];
    const outOps: RowOp[] = [];
    const outBefore: (Row | null)[] = [];
    for (const [entry, prevRow] of changed) {
      const next = this.output(rowOf(entry.value));
      if (prevRow) {
        const prev = this.output(prevRow);
        if (rowsEqual(prev, next)) continue;
        outRows.push(prev);
        outOps.push(RowOp.Delete);
        outBefore.push(prev);
      }
      outRows.push(next);
      outOps.push(RowOp.Insert);
      outBefore.push(null);
    }
    if (outRows.length > 0) return out.emit({ rows: outRows, times: outRows.map(() => lastTime), ops: outOps, before: outBefore });
  }
}
