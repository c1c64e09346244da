/**
 * The logical plan: what the SQL front end produces and the dataflow builder
 * consumes. Expressions are already resolved against their input's columns.
 */
import type { Field, Schema, SqlType } from "../plugin-api/index.ts";
import type { Expr } from "../expr/expr.ts";

/** A place in the SQL text, 1-based, for diagnostics. */
export interface SourceLocation {
  line: number;
  column: number;
}

export interface TableDef {
  name: string;
  /** Connector name; undefined for in-memory tables (CREATE TABLE without connector). */
  connector?: string;
  /** Physical columns: what the source fills or the sink receives, in row order. */
  fields: Field[];
  /**
   * Keys of the `METADATA FROM` columns, which are the last `metadata.length`
   * physical columns (the connector fills them; the format fills the others).
   */
  metadata?: string[];
  /** Generated columns, appended after the physical ones; exprs read the physical row. */
  virtual: { field: Field; expr: Expr }[];
  /** Connector options, validated and coerced by the connector's option schema. */
  options: Record<string, unknown>;
  /** The table's format and its validated options, when it has one. */
  format?: { name: string; options: Record<string, unknown> };
  /** Options every source has. */
  badData: "fail" | "drop";
  /** Idle timeout in µs; null disables idleness (idle_micros = -1). */
  idleMicros: number | null;
  /**
   * Event time: an expression over the full row (physical + virtual) giving µs.
   * Undefined means the source's own times, or processing time.
   */
  eventTime?: Expr;
  /** Watermark expression over the full row (µs); undefined means eventTime − 1 s. */
  watermark?: Expr;
  /** Positions in `fields` of the PRIMARY KEY columns, when declared. */
  primaryKey?: number[];
  /**
   * True when the table is a change stream (its format is updating, like
   * debezium_json): reading it gives inserts, updates and deletes.
   */
  changelog?: boolean;
  /** `type` option if given ('source' | 'sink' | 'lookup'; CREATE TEMPORARY TABLE means 'lookup'). */
  declaredRole?: "source" | "sink" | "lookup";
  /** A lookup table's cache (`lookup.cache.max_bytes`, `lookup.cache.ttl`); set exactly when declaredRole is 'lookup'. */
  lookup?: LookupCacheSettings;
  /** True when the table was declared without columns (a sink taking its query's columns). */
  inferColumns: boolean;
  location: SourceLocation;
}

export interface LookupCacheSettings {
  /** Bytes the cache of each subtask may hold (keys and rows, estimated); 0 disables it. */
  maxBytes: number;
  /** µs an entry stays usable; null: until evicted for room. */
  ttlMicros: number | null;
}

export type WindowSpec =
  | { kind: "tumble"; width: number }
  | { kind: "hop"; slide: number; width: number }
  | { kind: "session"; gap: number };

/** A sort key: ORDER BY inside an aggregate or a window function. */
export interface SortKey {
  expr: Expr;
  desc: boolean;
  nullsFirst: boolean;
}

export interface AggregateCall {
  /** count | sum | avg | min | max, a function of core/expr/aggregates.ts, or a registered UDAF's name. */
  fn: string;
  /** Value arguments, then constant parameters (a percentile, a separator) as literals. */
  args: Expr[];
  /** `array_agg(x ORDER BY y)`: the order the values are aggregated in. */
  orderBy?: SortKey[];
  distinct: boolean;
  /** count(*) has no args and counts rows. */
  star: boolean;
  /** `FILTER (WHERE ...)`: only rows for which it is true reach the aggregate. */
  filter?: Expr;
  type: SqlType;
}

/**
 * A window frame: ROWS by position, RANGE by the ORDER BY key's value (CURRENT
 * ROW is the row's peers; an offset, in the key's unit or µs for a timestamp,
 * takes the rows whose key is within it). offset null is UNBOUNDED.
 */
export interface WindowFrame {
  units: "rows" | "range";
  start: { kind: "preceding" | "following" | "current"; offset: number | null };
  end: { kind: "preceding" | "following" | "current"; offset: number | null };
}

/** A window function call (`... OVER (PARTITION BY ... ORDER BY ...)`), over the window node's input row. */
export type WindowFunctionCall =
  | { fn: "row_number" | "rank" | "dense_rank" | "percent_rank" | "cume_dist"; type: SqlType }
  | { fn: "ntile"; buckets: number; type: SqlType }
  /** `ignoreNulls` (IGNORE NULLS): rows whose value is NULL are skipped when counting offsets and positions. */
  | { fn: "lag" | "lead"; arg: Expr; offset: number; fallback?: Expr; ignoreNulls?: boolean; type: SqlType }
  | { fn: "first_value" | "last_value"; arg: Expr; frame: WindowFrame; ignoreNulls?: boolean; type: SqlType }
  | { fn: "nth_value"; arg: Expr; n: number; frame: WindowFrame; ignoreNulls?: boolean; type: SqlType }
  | { fn: "aggregate"; call: AggregateCall; frame: WindowFrame; type: SqlType };

interface NodeBase {
  /** Output columns of this node. */
  schema: Schema;
  /** True when the output is an updating stream (inserts, updates, deletes). */
  updating: boolean;
}

export type PlanNode =
  /**
   * `reads`: the physical columns the plan reads (ascending), when not all; the
   * reader may leave the others null (a generator skips building them).
   * `notNull`: the reader may leave out rows whose columns there are all null
   * (where its connector takes that filter): no consumer reads them.
   * `fieldsRead`: per struct column read only through its fields, those fields.
   */
  | (NodeBase & { kind: "source"; table: TableDef; reads?: number[]; notNull?: number[]; fieldsRead?: Record<number, string[]> })
  /**
   * A change stream normalised by its PRIMARY KEY (`keys` over the source row):
   * the last row of every key is kept so updates and deletes retract exactly
   * what was emitted before.
   */
  | (NodeBase & { kind: "changelog"; input: PlanNode; keys: Expr[]; ttl?: number })
  /** Filter (optional, applied first) then projection; also maps updating streams. */
  | (NodeBase & { kind: "map"; input: PlanNode; exprs: Expr[]; filter?: Expr })
  /**
   * Windowed aggregate. Output row: [...keys, window {start, end}, ...aggregates];
   * output event time is window.end − 1 µs. Emits when the watermark passes window.end.
   */
  | (NodeBase & {
      kind: "window_aggregate";
      input: PlanNode;
      window: WindowSpec;
      keys: Expr[];
      aggregates: AggregateCall[];
      /** GROUP BY the window column of a windowed input: key `keyIndex` is that window (`window` is then 1 µs panes). */
      carried?: { keyIndex: number; spec: WindowSpec };
    })
  /**
   * Window functions over windowed, append-only input: `partition` holds the
   * time window, so every row of a partition has the same event time and the
   * partition is complete when the watermark passes it. Output row:
   * [...input, ...functions], at the input row's time. `limit` (top-N, from
   * `WHERE rn <= N` over a ranking function) keeps only rows ranked within N.
   */
  | (NodeBase & {
      kind: "window_function";
      input: PlanNode;
      partition: Expr[];
      order: SortKey[];
      functions: WindowFunctionCall[];
      limit?: { n: number; by: "row_number" | "rank" | "dense_rank" };
      /** `rn = 1` by ROW_NUMBER over an append-only input in partitions that never end: one kept row per partition (core/operators/deduplicate.ts). */
      deduplicate?: true;
    })
  /** GROUP BY without a window: an updating result. Output row: [...keys, ...aggregates]. */
  | (NodeBase & { kind: "updating_aggregate"; input: PlanNode; keys: Expr[]; aggregates: AggregateCall[]; ttl?: number; ttlRetract?: boolean })
  /**
   * Calls async UDFs for each row, appending their results as columns: output row
   * [...input, ...calls]. A row whose call throws or times out fails the job, or
   * is dropped (and counted) when `badData` is 'drop'.
   */
  | (NodeBase & { kind: "async_udf"; input: PlanNode; calls: Extract<Expr, { kind: "udf" }>[]; badData: "fail" | "drop" })
  /** UNNEST in the SELECT list: one row per element of `array` (over the input row). Output row: [...input, element]. */
  | (NodeBase & { kind: "unnest"; input: PlanNode; array: Expr })
  | LookupJoinNode
  /** UNION ALL; `mergesInserts` when it joins the queries of several INSERTs into one sink table. */
  | (NodeBase & { kind: "union"; inputs: PlanNode[]; mergesInserts?: boolean })
  /**
   * Equi-join of two append-only inputs. Output row: [...left, ...right] (right
   * all NULL for an unmatched LEFT JOIN row). `leftKeys[i]` (over the left row)
   * must equal `rightKeys[i]` (over the right row); NULL keys never match.
   * With `window`, both inputs carry the same tumble/hop window column, which is
   * part of the key: matches are emitted when the watermark passes the window's
   * end (event time end − 1 µs), then the window's state is dropped. Without it,
   * every row joins against every stored row of the other side for its key
   * (state kept indefinitely); a LEFT JOIN then gives an updating result.
   */
  | (NodeBase & {
      kind: "join";
      left: PlanNode;
      right: PlanNode;
      joinType: JoinType;
      leftKeys: Expr[];
      rightKeys: Expr[];
      window?: { spec: WindowSpec; leftColumn: number; rightColumn: number };
      /** Updating joins: µs a stored row is kept after its event time, once the watermark passes it (SET updating_ttl). */
      ttl?: number;
      /** Window joins: ON conditions besides the key equalities, over the joined row [...left, ...right]; a row matches only where it holds. */
      condition?: Expr;
    });

/** `semi` and `anti` (IN / EXISTS subqueries) output the left row alone: a semi join's when it has a match, an anti join's when it has none. */
export type JoinType = "inner" | "left" | "right" | "full" | "semi" | "anti";

/**
 * A lookup join: each input row's key is read from the lookup table's store
 * (through its connector's `lookup`, with a cache). Output row:
 * [...input, ...table.fields] at the input row's time; an INNER join drops rows
 * whose key the store lacks, a LEFT join pads them with NULLs. `keys[i]` (over
 * the input row) equals the table's column `table.primaryKey[i]`.
 */
export type LookupJoinNode = NodeBase & { kind: "lookup_join"; input: PlanNode; table: TableDef; joinType: "inner" | "left"; keys: Expr[] };

export interface SinkTarget {
  /** A connector-backed table, or the preview output of a bare SELECT. */
  table: TableDef | null;
  input: PlanNode;
  location: SourceLocation;
}

export interface LogicalPipeline {
  /** Every table referenced, by name. */
  tables: Map<string, TableDef>;
  sinks: SinkTarget[];
}
