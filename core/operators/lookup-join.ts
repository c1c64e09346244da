/**
 * A lookup join: for each input batch, the distinct keys its cache does not
 * hold are read from the store in one call of the connector's `lookup`, then
 * every row is emitted in input order with the store's row appended (INNER
 * drops rows without one; LEFT pads them with NULLs). A NULL key matches
 * nothing and is never looked up.
 *
 * The operator keeps no checkpointed state: the cache is only a cache. A batch
 * is finished before the next message is taken, so no lookup is in flight at a
 * barrier, and a restore replays the input after the checkpoint, looking its
 * keys up again. Output stays exactly-once; what a replayed row is joined with
 * is the store's value at the time of the replay, which may be newer than what
 * the first run saw (as in Flink and Arroyo). A failing store fails the batch,
 * and with it the job, which restores from its checkpoint.
 */
import type { Batch, LookupSource, Row } from "../plugin-api/index.ts";
import type { ConnectorMetrics } from "../plugin-api/index.ts";
import type { LookupCacheSettings } from "../plan/logical.ts";
import { connectorMetrics } from "../runtime/metrics.ts";
import { keyText, LookupCache, singleKeyText } from "./lookup-cache.ts";
import type { Collector, Operator, OperatorContext } from "./operator.ts";
import type { RowFn } from "./window-aggregate.ts";

export interface LookupJoinSpec {
  tableName: string;
  joinType: "inner" | "left";
  /** Key values over the input row, in the order the source's `lookup` takes them. */
  keys: RowFn[];
  /** Columns of the lookup table (the width of its rows). */
  width: number;
  cache: LookupCacheSettings;
  /** Opens the connector's lookup source for this subtask. */
  open(ctx: OperatorContext): Promise<LookupSource>;
}

/** Keys sent to the store in one call at most; a larger batch makes several calls. */
const MAX_KEYS_PER_CALL = 1024;

export class LookupJoinOperator implements Operator {
  readonly name = "lookup_join";
  private source: LookupSource | null = null;
  private cache!: LookupCache;
  private metrics!: ConnectorMetrics;
  private readonly nulls: null[];

  constructor(private readonly spec: LookupJoinSpec) {
    this.nulls = new Array(spec.width).fill(null);
  }

  async open(ctx: OperatorContext): Promise<void> {
    this.cache = new LookupCache(this.spec.cache);
    this.metrics = connectorMetrics(ctx.metrics);
    this.source = await this.spec.open(ctx);
  }

  async process(batch: Batch, out: Collector): Promise<void> {
    const { rows, times } = batch;
    const n = rows.length;
    const keyCount = this.spec.keys.length;
    // Per row: index into `found` of its key's row (-1: NULL key).
    const slot = new Int32Array(n);
    const found: (Row | null | undefined)[] = [];
    const slotOf = new Map<string, number>();
    const missing: { slot: number; key: unknown[]; text: string }[] = [];
    let hits = 0;
    const single = keyCount === 1 ? this.spec.keys[0]! : null;
    for (let i = 0; i < n; i++) {
      let key: unknown[] | null = null;
      let value: unknown;
      let text: string;
      if (single) {
        // One key column (the common case): no array per row unless the key must be fetched.
        const v = (value = single(rows[i]!, times[i]!));
        if (v === null || v === undefined) {
          slot[i] = -1;
          continue;
        }
        text = singleKeyText(v);
      } else {
        key = new Array(keyCount);
        let hasNull = false;
        for (let k = 0; k < keyCount; k++) {
          const v = this.spec.keys[k]!(rows[i]!, times[i]!);
          if (v === null || v === undefined) hasNull = true;
          key[k] = v;
        }
        if (hasNull) {
          slot[i] = -1;
          continue;
        }
        text = keyText(key);
      }
      let s = slotOf.get(text);
      if (s === undefined) {
        s = found.length;
        slotOf.set(text, s);
        const cached = this.cache.get(text);
        found.push(cached);
        if (cached === undefined) missing.push({ slot: s, key: key ?? [value], text });
        else hits++;
      }
      slot[i] = s;
    }
    this.metrics.add("lookup_cache_hits_total", hits);
    this.metrics.add("lookup_cache_misses_total", missing.length);
    for (let from = 0; from < missing.length; from += MAX_KEYS_PER_CALL) {
      const part = missing.slice(from, from + MAX_KEYS_PER_CALL);
      const answers = await this.source!.lookup(part.map((m) => m.key));
      this.metrics.add("lookups_total");
      this.metrics.add("lookup_keys_total", part.length);
      if (!Array.isArray(answers) || answers.length !== part.length) {
        throw new Error(`lookup table '${this.spec.tableName}': the connector answered ${Array.isArray(answers) ? answers.length : "no list"} rows for ${part.length} keys; it must return one entry per key`);
      }
      for (let j = 0; j < part.length; j++) {
        const row = answers[j] ?? null;
        if (row !== null && row.length !== this.spec.width) {
          throw new Error(`lookup table '${this.spec.tableName}': the connector returned a row of ${row.length} values; the table has ${this.spec.width} columns`);
        }
        found[part[j]!.slot] = row;
        this.cache.set(part[j]!.text, row);
      }
    }
    const outRows: Row[] = [];
    const outTimes: number[] = [];
    const left = this.spec.joinType === "left";
    for (let i = 0; i < n; i++) {
      const s = slot[i]!;
      const match = s < 0 ? null : found[s]!;
      if (match === null && !left) continue;
      outRows.push([...rows[i]!, ...(match ?? this.nulls)]);
      outTimes.push(times[i]!);
    }
    if (outRows.length > 0) await out.emit({ rows: outRows, times: outTimes });
  }

  async close(): Promise<void> {
    const source = this.source;
    this.source = null;
    await source?.close?.();
  }
}
