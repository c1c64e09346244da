/**
 * Updating top-N: `ROW_NUMBER() OVER (PARTITION BY k ORDER BY columns) ... WHERE rn <= N`
 * over an append-only input whose partitions never end (Nexmark q19). Each
 * partition keeps its N best rows, sorted, as the values of one flat array
 * (row i at [i·width, (i+1)·width)): no object per kept row for the collector
 * to trace, and the sort keys are read from the rows' columns. A row that
 * sorts after the N-th of a full partition costs one keyed-state read and one
 * comparison and allocates nothing; one that enters has its values copied into
 * its place and the N-th falls out.
 *
 * The result and its changelog are those of the general updating window
 * function (UpdatingWindowFunctionOperator) over append-only input: ties keep
 * the earlier arrival, and at the end of a batch each changed partition deletes
 * the rows it gave before the batch and no longer gives, then inserts those it
 * now gives and did not, at the batch's last event time. With ROW_NUMBER among
 * the appended values an output row holds its position, so before and after
 * compare position by position; without it (the query reads no ranking, or
 * only RANK) they compare as the general operator does.
 */
import { RowOp, type Batch, type Row } from "../plugin-api/index.ts";
import { keyEquals } from "../state/hash.ts";
import type { KeyedTable, StateCodec, StateEntry } from "../state/tables.ts";
import { compareKey, type AggregateOrder } from "../expr/aggregates.ts";
import type { Collector, Operator, OperatorContext } from "./operator.ts";
import { KeyEvaluator } from "./window-aggregate.ts";
import { pushDifference, type Entry, type WindowFunctionSpec } from "./window-function.ts";

type Ranking = "row_number" | "rank" | "dense_rank";
/** RANK and DENSE_RANK by position in a partition's sorted rows. */
type PeerRanks = Record<Exclude<Ranking, "row_number">, number[]>;

/**
 * The saved layout: [FLAT_LAYOUT, width, ...values]. The general operator saves
 * the same table as [row, keys] pairs (earlier still as { entries }), whose
 * first element is never a number; a checkpoint it wrote restores here.
 */
const FLAT_LAYOUT = 2;

function flatRowsCodec(width: number, n: number): StateCodec<unknown[]> {
  // A partition saved under a larger N restores with its N best rows.
  const best = (entries: Entry[]) => entries.slice(0, n).flatMap((e) => e[0]);
  return {
    save: (values) => [FLAT_LAYOUT, width, ...values],
    load: (saved) => {
      if (!Array.isArray(saved)) return best((saved as { entries: Entry[] }).entries);
      if (saved[0] !== FLAT_LAYOUT) return best(saved as Entry[]);
      if (saved[1] !== width) throw new Error(`a top-N partition saved with rows of ${saved[1]} columns cannot restore into rows of ${width}`);
      return saved.slice(2, 2 + n * width);
    },
  };
}

/** A partition met for the first time in a batch gave nothing before it. */
const NOTHING: unknown[] = [];
const emptyList = (): unknown[] => [];

/** Compares rows by the ORDER BY columns, each row given as a flat array and the offset of its first value. */
type FlatCompare = (a: readonly unknown[], aAt: number, b: readonly unknown[], bAt: number) => number;

export class UpdatingTopNOperator implements Operator {
  readonly name = "updating top-N";
  private partitions!: KeyedTable<unknown[]>;
  private readonly n: number;
  private readonly compare: FlatCompare;
  private readonly partitionKey: KeyEvaluator;
  private readonly rankings: Ranking[];
  /** ROW_NUMBER is appended: an output row is told apart by its position. */
  private readonly positional: boolean;
  /** RANK or DENSE_RANK is appended: their values, per position, before and after a batch. */
  private readonly peerRanks: PeerRanks[] | null;

  /** Whether the operator computes `spec` over append-only rows of `width` columns. */
  static handles(spec: WindowFunctionSpec, width: number): boolean {
    return (
      width >= 1 &&
      spec.limit?.by === "row_number" &&
      spec.limit.n >= 1 &&
      spec.order.every((o) => o.column !== undefined) &&
      spec.functions.every((f) => f.kind === "row_number" || f.kind === "rank" || f.kind === "dense_rank")
    );
  }

  constructor(
    spec: WindowFunctionSpec,
    /** The input rows' columns: each kept row takes that many values of its partition's array. */
    private readonly width: number,
  ) {
    if (!UpdatingTopNOperator.handles(spec, width)) {
      throw new Error("an updating top-N limits by ROW_NUMBER(), orders by columns of non-empty rows and appends ranking functions only");
    }
    this.n = spec.limit!.n;
    const order = spec.order.map((o): AggregateOrder => ({ desc: o.desc, nullsFirst: o.nullsFirst }));
    const columns = spec.order.map((o) => o.column!);
    this.compare = (a, aAt, b, bAt) => {
      for (let k = 0; k < columns.length; k++) {
        const c = compareKey(a[aAt + columns[k]!], b[bAt + columns[k]!], order[k]!);
        if (c !== 0) return c;
      }
      return 0;
    };
    this.partitionKey = new KeyEvaluator(spec.partition);
    this.rankings = spec.functions.map((f) => f.kind as Ranking);
    this.positional = this.rankings.includes("row_number");
    const peers = this.rankings.some((r) => r !== "row_number");
    this.peerRanks = peers ? [0, 1].map(() => ({ rank: [], dense_rank: [] })) : null;
  }

  open(ctx: OperatorContext): void {
    this.partitions = ctx.state.keyed<unknown[]>("partitions", flatRowsCodec(this.width, this.n));
  }

  process(batch: Batch, out: Collector): void | Promise<void> {
    const { rows, times, ops } = batch;
    if (ops?.some((op) => op !== RowOp.Insert)) throw new Error("the updating top-N got a retraction; the planner routes updating inputs to the general window function operator");
    const table = this.partitions;
    const key = this.partitionKey;
    const compare = this.compare;
    const n = this.n;
    const w = this.width;
    const full = n * w;
    /** Each partition this batch changed → its values before. */
    const touched = new Map<StateEntry<unknown[]>, unknown[]>();
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const hash = key.eval(row, times[i]!);
      const entry = table.get(hash, key.scratch);
      if (entry === undefined) {
        const made = table.update(hash, key.scratch, emptyList);
        for (let k = 0; k < w; k++) made.value.push(row[k]);
        touched.set(made, NOTHING);
        continue;
      }
      const list = entry.value;
      // Ties keep the earlier arrival (as the general operator's stable insert does): a row level with the N-th stays out.
      if (list.length === full && compare(list, full - w, row, 0) <= 0) continue;
      if (!touched.has(entry)) {
        table.modify(entry);
        touched.set(entry, list.slice());
      }
      this.insert(list, row);
    }
    if (touched.size === 0) return;
    const outRows: Row[] = [];
    const outOps: RowOp[] = [];
    for (const [entry, prev] of touched) {
      const next = entry.value;
      if (this.positional) this.pushChangedPositions(prev, next, outRows, outOps);
      else pushDifference(this.outputs(prev), this.outputs(next), outRows, outOps);
    }
    if (outRows.length === 0) return;
    const before = new Array<Row | null>(outRows.length);
    for (let i = 0; i < outRows.length; i++) before[i] = outOps[i] === RowOp.Delete ? outRows[i]! : null;
    return out.emit({ rows: outRows, times: new Array<number>(outRows.length).fill(times[rows.length - 1]!), ops: outOps, before });
  }

  /** Copies `row` into a partition's values after the rows it does not sort before; a full partition's last row falls out. */
  private insert(list: unknown[], row: Row): void {
    const w = this.width;
    const count = list.length / w;
    let lo = 0;
    let hi = count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.compare(list, mid * w, row, 0) <= 0) lo = mid + 1;
      else hi = mid;
    }
    const at = lo * w;
    // The values that move one row down end here: the last row's are pushed first when the partition grows, dropped when it is full.
    let end: number;
    if (count < this.n) {
      if (at === list.length) {
        for (let k = 0; k < w; k++) list.push(row[k]);
        return;
      }
      end = list.length - w;
      for (let k = 0; k < w; k++) list.push(list[end + k]);
    } else end = list.length - w;
    for (let j = end - 1; j >= at; j--) list[j + w] = list[j];
    for (let k = 0; k < w; k++) list[at + k] = row[k];
  }

  /**
   * The changes between a partition's rows before and after a batch, when each
   * output holds its ROW_NUMBER: the row at a position stays if the same row
   * with the same ranks is there after; the others are deleted, then inserted.
   */
  private pushChangedPositions(prev: unknown[], next: unknown[], outRows: Row[], outOps: RowOp[]): void {
    const w = this.width;
    const peers = this.peerRanks;
    if (peers) {
      this.fillPeerRanks(prev, peers[0]!);
      this.fillPeerRanks(next, peers[1]!);
    }
    const same = (i: number): boolean => {
      const at = i * w;
      if (at >= prev.length || at >= next.length) return false;
      for (let k = at; k < at + w; k++) if (!keyEquals(prev[k], next[k])) return false;
      if (!peers) return true;
      return this.rankings.every((r) => r === "row_number" || peers[0]![r][i] === peers[1]![r][i]);
    };
    for (let i = 0; i * w < prev.length; i++) {
      if (same(i)) continue;
      outRows.push(this.output(prev, i, peers?.[0]));
      outOps.push(RowOp.Delete);
    }
    for (let i = 0; i * w < next.length; i++) {
      if (same(i)) continue;
      outRows.push(this.output(next, i, peers?.[1]));
      outOps.push(RowOp.Insert);
    }
  }

  /** RANK and DENSE_RANK of each row of a partition's values. */
  private fillPeerRanks(values: unknown[], into: PeerRanks): void {
    const w = this.width;
    for (let i = 0; i * w < values.length; i++) {
      const tied = i > 0 && this.compare(values, (i - 1) * w, values, i * w) === 0;
      into.rank[i] = tied ? into.rank[i - 1]! : i + 1;
      into.dense_rank[i] = tied ? into.dense_rank[i - 1]! : i === 0 ? 1 : into.dense_rank[i - 1]! + 1;
    }
  }

  /** Row `i` of a partition's values, with the ranking values appended. */
  private output(values: unknown[], i: number, peers: PeerRanks | undefined): Row {
    const row = values.slice(i * this.width, (i + 1) * this.width);
    for (const r of this.rankings) row.push(r === "row_number" ? i + 1 : peers![r][i]);
    return row;
  }

  private outputs(values: unknown[]): Row[] {
    const peers = this.peerRanks?.[0];
    if (peers) this.fillPeerRanks(values, peers);
    const rows: Row[] = [];
    for (let i = 0; i * this.width < values.length; i++) rows.push(this.output(values, i, peers));
    return rows;
  }
}
