/**
 * GROUP BY without a window: an updating result. Each input batch changes some
 * groups; at the end of the batch each changed group emits one change —
 * insert, update (with the previous row) or delete — rather than one per record.
 */
import { RowOp, type Batch, type Row } from "../plugin-api/index.ts";
import { hashValues, rowsEqual } from "../state/hash.ts";
import { KeyedMap, type KeyedEntry } from "../state/keyed-map.ts";
import type { Accumulator } from "./accumulators.ts";
import type { Collector, Operator, OperatorContext } from "./operator.ts";
import type { AggregateSpec } from "./window-aggregate.ts";

interface Group {
  accs: any[];
  /** Live input rows in the group; at zero the group is deleted. */
  rows: number;
  /** The row last emitted for this group, or null. */
  emitted: Row | null;
}

const STATE_VERSION = 1;

export class UpdatingAggregate implements Operator {
  readonly name = "updating_aggregate";
  private readonly groups = new KeyedMap<Group>();
  private ctx!: OperatorContext;
  private readonly scratch: unknown[];

  constructor(private readonly spec: AggregateSpec) {
    this.scratch = new Array(spec.keys.length);
  }

  open(ctx: OperatorContext, restored: unknown[] | undefined): void {
    this.ctx = ctx;
    const accs = this.spec.accumulators;
    for (const s of restored ?? []) {
      if (!s) continue;
      const st = s as { version: number; groups: [number, unknown[], unknown[], number, Row | null][] };
      if (st.version !== STATE_VERSION) throw new Error(`aggregate state version ${st.version} is not supported`);
      for (const [hash, key, saved, rows, emitted] of st.groups) {
        if (hash % ctx.parallelism !== ctx.subtaskIndex) continue;
        this.groups.getOrCreate(hash, key, () => ({
          accs: saved.map((v, i) => (accs[i]!.load ? accs[i]!.load!(v) : v)),
          rows,
          emitted,
        }));
      }
    }
  }

  private group(row: Row, time: number): KeyedEntry<Group> {
    const keys = this.spec.keys;
    for (let k = 0; k < keys.length; k++) this.scratch[k] = keys[k]!(row, time);
    const hash = hashValues(this.scratch);
    return this.groups.getOrCreate(hash, this.scratch, () => ({
      accs: this.spec.accumulators.map((a) => a.init()),
      rows: 0,
      emitted: null,
    }));
  }

  private apply(entry: KeyedEntry<Group>, row: Row, time: number, retract: boolean): void {
    const { args, accumulators } = this.spec;
    const g = entry.value;
    for (let j = 0; j < accumulators.length; j++) {
      const acc: Accumulator = accumulators[j]!;
      const arg = args[j];
      const v = arg ? arg(row, time) : 1;
      if (retract) {
        if (!acc.retract) throw new Error("this aggregate cannot take retractions from an updating input");
        g.accs[j] = acc.retract(g.accs[j], v);
      } else g.accs[j] = acc.add(g.accs[j], v);
    }
    g.rows += retract ? -1 : 1;
  }

  process(batch: Batch, out: Collector): void | Promise<void> {
    const { rows, times, ops, before } = batch;
    const touched = new Set<KeyedEntry<Group>>();
    let lastTime = 0;
    for (let i = 0; i < rows.length; i++) {
      const t = times[i]!;
      lastTime = t;
      const op = ops ? ops[i]! : RowOp.Insert;
      if (op === RowOp.Update && before?.[i]) {
        const old = this.group(before[i]!, t);
        this.apply(old, before[i]!, t, true);
        touched.add(old);
      }
      const entry = this.group(rows[i]!, t);
      this.apply(entry, rows[i]!, t, op === RowOp.Delete);
      touched.add(entry);
    }
    const outRows: Row[] = [];
    const outTimes: number[] = [];
    const outOps: RowOp[] = [];
    const outBefore: (Row | null)[] = [];
    for (const entry of touched) {
      const g = entry.value;
      const next = g.rows > 0 ? [...entry.key, ...g.accs.map((v, j) => this.spec.accumulators[j]!.result(v))] : null;
      const prev = g.emitted;
      if (next && !prev) {
        outRows.push(next);
        outOps.push(RowOp.Insert);
        outBefore.push(null);
      } else if (next && prev) {
        if (rowsEqual(prev, next)) continue;
        outRows.push(next);
        outOps.push(RowOp.Update);
        outBefore.push(prev);
      } else if (!next && prev) {
        outRows.push(prev);
        outOps.push(RowOp.Delete);
        outBefore.push(prev);
      }
      outTimes.push(lastTime);
      g.emitted = next;
      if (!next) this.groups.delete(entry);
    }
    if (outRows.length > 0) return out.emit({ rows: outRows, times: outTimes, ops: outOps, before: outBefore });
  }

  snapshot(): unknown {
    const accs = this.spec.accumulators;
    return {
      version: STATE_VERSION,
      groups: [...this.groups.entries()].map((e) => [
        e.hash,
        e.key,
        e.value.accs.map((v, i) => (accs[i]!.save ? accs[i]!.save!(v) : v)),
        e.value.rows,
        e.value.emitted,
      ]),
    };
  }
}
