/**
 * Updating top-N: `ROW_NUMBER() OVER (PARTITION BY k ORDER BY columns) ... WHERE rn <= N`
 * over an append-only input whose partitions never end (Nexmark q19). Each
 * partition keeps its N best rows, sorted, in one array (no per-row wrapper:
 * the sort keys are read from the rows' columns). A row that sorts after the
 * N-th of a full partition, most of them once partitions fill, costs one
 * keyed-state read and one comparison and allocates nothing; one that enters
 * is put in its place and the N-th falls out.
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
import { rowsEqual } from "../state/hash.ts";
import type { KeyedTable, StateCodec, StateEntry } from "../state/tables.ts";
import { columnComparator, type AggregateOrder } from "../expr/aggregates.ts";
import type { Collector, Operator, OperatorContext } from "./operator.ts";
import { KeyEvaluator } from "./window-aggregate.ts";
import { placeAfterEquals, pushDifference, type Entry, type WindowFunctionSpec } from "./window-function.ts";

type Ranking = "row_number" | "rank" | "dense_rank";
/** RANK and DENSE_RANK by position in a partition's sorted rows. */
type PeerRanks = Record<Exclude<Ranking, "row_number">, number[]>;

/**
 * The saved layout: [ROWS_LAYOUT, ...rows]. The general operator saves the same
 * table as [row, keys] pairs (earlier still as { entries }), whose first element
 * is never a number; a checkpoint it wrote restores here.
 */
const ROWS_LAYOUT = 2;

const topRowsCodec: StateCodec<Row[]> = {
  save: (rows) => [ROWS_LAYOUT, ...rows],
  load: (saved) => {
    if (!Array.isArray(saved)) return (saved as { entries: Entry[] }).entries.map((e) => e[0]);
    return saved[0] === ROWS_LAYOUT ? (saved.slice(1) as Row[]) : (saved as Entry[]).map((e) => e[0]);
  },
};

/** A partition met for the first time in a batch gave nothing before it. */
const NOTHING: Row[] = [];
const emptyList = (): Row[] => [];

export class UpdatingTopNOperator implements Operator {
  readonly name = "updating top-N";
  private partitions!: KeyedTable<Row[]>;
  private readonly n: number;
  private readonly compare: (a: Row, b: Row) => number;
  private readonly partitionKey: KeyEvaluator;
  private readonly rankings: Ranking[];
  /** ROW_NUMBER is appended: an output row is told apart by its position. */
  private readonly positional: boolean;
  /** RANK or DENSE_RANK is appended: their values, per position, before and after a batch. */
  private readonly peerRanks: PeerRanks[] | null;

  /** Whether the operator computes `spec` (over append-only input). */
  static handles(spec: WindowFunctionSpec): boolean {
    return (
      spec.limit?.by === "row_number" &&
      spec.limit.n >= 1 &&
      spec.order.every((o) => o.column !== undefined) &&
      spec.functions.every((f) => f.kind === "row_number" || f.kind === "rank" || f.kind === "dense_rank")
    );
  }

  constructor(spec: WindowFunctionSpec) {
    if (!UpdatingTopNOperator.handles(spec)) {
      throw new Error("an updating top-N limits by ROW_NUMBER(), orders by columns and appends ranking functions only");
    }
    this.n = spec.limit!.n;
    this.compare = columnComparator(
      spec.order.map((o): AggregateOrder => ({ desc: o.desc, nullsFirst: o.nullsFirst })),
      spec.order.map((o) => o.column!),
    );
    this.partitionKey = new KeyEvaluator(spec.partition);
    this.rankings = spec.functions.map((f) => f.kind as Ranking);
    this.positional = this.rankings.includes("row_number");
    const peers = this.rankings.some((r) => r !== "row_number");
    this.peerRanks = peers ? [0, 1].map(() => ({ rank: [], dense_rank: [] })) : null;
  }

  open(ctx: OperatorContext): void {
    this.partitions = ctx.state.keyed<Row[]>("partitions", topRowsCodec);
  }

  process(batch: Batch, out: Collector): void | Promise<void> {
    const { rows, times, ops } = batch;
    if (ops?.some((op) => op !== RowOp.Insert)) throw new Error("the updating top-N got a retraction; the planner routes updating inputs to the general window function operator");
    const table = this.partitions;
    const key = this.partitionKey;
    const compare = this.compare;
    const n = this.n;
    /** Each partition this batch changed → the rows it held before. */
    const touched = new Map<StateEntry<Row[]>, Row[]>();
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const hash = key.eval(row, times[i]!);
      const entry = table.get(hash, key.scratch);
      if (entry === undefined) {
        const made = table.update(hash, key.scratch, emptyList);
        made.value.push(row);
        touched.set(made, NOTHING);
        continue;
      }
      const list = entry.value;
      if (list.length > n) list.length = n;
      // Ties keep the earlier arrival (as the general operator's stable insert does): a row level with the N-th stays out.
      if (list.length === n && compare(list[n - 1]!, row) <= 0) continue;
      if (!touched.has(entry)) {
        table.modify(entry);
        touched.set(entry, list.slice());
      }
      insertInPlace(list, row, n, compare);
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

  /**
   * The changes between a partition's rows before and after a batch, when each
   * output holds its ROW_NUMBER: the row at a position stays if the same row
   * with the same ranks is there after; the others are deleted, then inserted.
   */
  private pushChangedPositions(prev: Row[], next: Row[], outRows: Row[], outOps: RowOp[]): void {
    const peers = this.peerRanks;
    if (peers) {
      this.fillPeerRanks(prev, peers[0]!);
      this.fillPeerRanks(next, peers[1]!);
    }
    const same = (i: number): boolean => {
      if (i >= prev.length || i >= next.length) return false;
      if (prev[i] !== next[i] && !rowsEqual(prev[i]!, next[i]!)) return false;
      if (!peers) return true;
      return this.rankings.every((r) => r === "row_number" || peers[0]![r][i] === peers[1]![r][i]);
    };
    for (let i = 0; i < prev.length; i++) {
      if (same(i)) continue;
      outRows.push(this.output(prev, i, peers?.[0]));
      outOps.push(RowOp.Delete);
    }
    for (let i = 0; i < next.length; i++) {
      if (same(i)) continue;
      outRows.push(this.output(next, i, peers?.[1]));
      outOps.push(RowOp.Insert);
    }
  }

  /** RANK and DENSE_RANK of each position of a sorted list. */
  private fillPeerRanks(list: Row[], into: PeerRanks): void {
    for (let i = 0; i < list.length; i++) {
      const tied = i > 0 && this.compare(list[i - 1]!, list[i]!) === 0;
      into.rank[i] = tied ? into.rank[i - 1]! : i + 1;
      into.dense_rank[i] = tied ? into.dense_rank[i - 1]! : i === 0 ? 1 : into.dense_rank[i - 1]! + 1;
    }
  }

  /** The row at position `i` with the ranking values appended. */
  private output(list: Row[], i: number, peers: PeerRanks | undefined): Row {
    const row = list[i]!.slice();
    for (const r of this.rankings) row.push(r === "row_number" ? i + 1 : peers![r][i]);
    return row;
  }

  private outputs(list: Row[]): Row[] {
    const peers = this.peerRanks?.[0];
    if (peers) this.fillPeerRanks(list, peers);
    return list.map((_, i) => this.output(list, i, peers));
  }
}

/** Puts `row` in a sorted list of at most `n` rows after its equals, dropping the last row of a full list. */
function insertInPlace(list: Row[], row: Row, n: number, compare: (a: Row, b: Row) => number): void {
  const lo = placeAfterEquals(list, row, compare);
  let j = list.length < n ? list.length : n - 1;
  for (; j > lo; j--) list[j] = list[j - 1]!;
  list[lo] = row;
}
