/**
 * Runnel's public plugin API: the one module connectors, formats, UDFs and UDAFs
 * depend on. It holds types and identity helpers only — no runtime dependencies —
 * so third-party packages can import it without pulling in the engine.
 */
import type { Batch, Field, Row, RowOp, SqlType } from "./types.ts";
import type { OptionsShape, OptionValues } from "./options.ts";

export * from "./types.ts";
export * from "./options.ts";

/** The version of this API; plugins built for another major version are refused. */
export const PLUGIN_API_VERSION = 1;

// ---------------------------------------------------------------- formats

export interface Deserializer {
  /**
   * Turns one record's bytes into a row of the table's columns; throws with a
   * readable message on bad input. null: the record carries no row (skip it).
   * An updating format (debezium_json) marks rows that update or delete with
   * `row[ROW_CHANGE]`; connectors pass rows through as they are.
   */
  deserialize(data: Uint8Array | string): Row | null;
  /**
   * Optional: the same as `deserialize(buf.subarray(start, end))`, for sources
   * that hold many records in one buffer (a Kafka fetch): the format reads the
   * bytes in place and the source makes no view per record.
   */
  deserializeRange?(buf: Uint8Array, start: number, end: number): Row | null;
  /** Records without a value (Kafka tombstones) mean nothing to this format and are skipped, not reported as bad. */
  skipsEmptyRecords?: boolean;
  /**
   * Async work a record needs before `deserialize` can read it, such as fetching
   * from a schema registry the schema whose id the record carries. Sources call
   * it before `deserialize` for each record and await it when it returns a
   * promise (undefined, the common case, means nothing to wait for). A rejection
   * means the format cannot work now (the registry is unreachable after retries),
   * not that the record is bad: the source fails instead of dropping the record.
   * What the format can tell is bad (an unknown schema id) `deserialize` reports.
   */
  prepare?(data: Uint8Array | string): Promise<void> | undefined;
}

/** How a row read from a change stream changes its table: an update (with the previous row, when the record has it) or a delete. */
export interface RowChange {
  op: RowOp.Update | RowOp.Delete;
  /** For an update, the row it replaces (null when the record does not carry it). */
  before: Row | null;
}

/** The property of a deserialized row that holds its RowChange; rows without it are inserts. */
export const ROW_CHANGE: unique symbol = Symbol.for("runnel.row-change") as never;

/** A row as an updating format returns it. */
export type ChangeRow = Row & { [ROW_CHANGE]?: RowChange };

/** Bytes a sink gathers many records in (a block of file lines); a serializer appends to it with `encodeInto`. */
export interface ByteSink {
  /** The buffer; bytes [0, length) are written. `reserve` may replace it. */
  bytes: Uint8Array;
  length: number;
  /** Makes room for `n` more bytes after `length` and returns the (possibly new) buffer. */
  reserve(n: number): Uint8Array;
}

export interface Serializer {
  /** Encodes one row; `op` and `before` are set for updating streams. */
  serialize(row: Row, op?: RowOp, before?: Row | null): string | Uint8Array;
  /**
   * Optional: appends the UTF-8 bytes `serialize` would give for an
   * insert-only row to `out`, for sinks that gather many records in one buffer
   * (file lines): no string or array per record.
   */
  encodeInto?(row: Row, out: ByteSink): void;
  /**
   * A line that begins every file a file sink writes in this format, before its
   * first record (CSV's header row), without its line end: the sink ends it as
   * it ends records. Sinks that send records one by one (Kafka messages) leave it out.
   */
  fileHeader?: string;
  /**
   * Async set-up before the first `serialize` (registering the schema with a
   * schema registry to learn its id). The engine awaits it before it creates the
   * sink writer; a rejection fails the job with its message.
   */
  open?(): Promise<void>;
}

/** The table a format reads or writes, as formats that name things after it (registry subjects) see it. */
export interface FormatTable {
  name: string;
  role: "source" | "sink";
  connector?: string;
  /** The connector's validated options (a Kafka table's `topic`...). */
  connectorOptions: Record<string, unknown>;
}

export interface FormatContext<O> {
  options: O;
  /** The columns being read or written, in row order. */
  fields: Field[];
  /** The table (set by the engine; absent where a format is used on its own, as by the preview). */
  table?: FormatTable;
}

export interface FormatDefinition<S extends OptionsShape = OptionsShape> {
  name: string;
  description?: string;
  /** Options, given in SQL either bare (`timestamp_format`) or prefixed (`json.timestamp_format`). */
  options: S;
  /** Whether the format can write updating (insert/update/delete) streams. */
  updating?: boolean;
  /**
   * Checks at planning time, once per role the table plays: options against each
   * other and against the columns. Throw an Error naming the option at fault.
   */
  validate?(ctx: FormatContext<OptionValues<S>> & { table: FormatTable }): void;
  deserializer?(ctx: FormatContext<OptionValues<S>>): Deserializer;
  serializer?(ctx: FormatContext<OptionValues<S>>): Serializer;
}

// ---------------------------------------------------------------- connectors

export interface PluginLogger {
  info(message: string): void;
  warn(message: string): void;
}

/**
 * Which local files a job may open. The CLI leaves them unrestricted; the
 * control plane confines pipelines to its configured roots. Connectors call
 * `resolve` for every local path before opening it (at planning, in
 * `validate`, and again when reading or writing).
 */
export interface FileAccess {
  /**
   * The path to open: absolute, with symbolic links and `..` resolved as the
   * kernel would. Throws an Error naming `option` when the job may not use it.
   */
  resolve(path: string, option: string): string;
}

/**
 * Figures a connector reports about the system it talks to, per subtask, beside
 * the engine's own counters (records, and bytes through the format). Names are
 * snake_case; counters end in `_total` by convention (`errors_total`,
 * `retries_total`), gauges do not (`lag`: messages waiting in the remote
 * system). Exported by the control plane as `runnel_connector_<name>`.
 */
export interface ConnectorMetrics {
  /** Adds `n` (default 1) to a counter. */
  add(name: string, n?: number): void;
  /** Sets a gauge. */
  set(name: string, value: number): void;
}

interface ConnectorContextBase<O> {
  options: O;
  tableName: string;
  /** The job's id ("local" for `runnel run`); names the writer in logs that record it (a Delta `txn` action). */
  jobId?: string;
  subtaskIndex: number;
  parallelism: number;
  /**
   * When this run of the job started (µs since the epoch), the same in every
   * subtask and worker. A source whose default event times begin "now" starts
   * them here, not at its own Date.now(): subtasks start milliseconds apart
   * (more across processes), and each split's times would be shifted by that.
   */
  startTimeMicros: number;
  /** Aborted when the job stops; long waits should watch it. */
  signal: AbortSignal;
  log: PluginLogger;
  /** Local files this job may use; absent means unrestricted. */
  files?: FileAccess;
  metrics: ConnectorMetrics;
}

export interface SourceContext<O> extends ConnectorContextBase<O> {
  /** The columns this source fills, in row order (the table's physical columns). */
  fields: Field[];
  /** Present when the table names a format. */
  format?: Deserializer;
  /**
   * The table's format by name, with its validated options. Sources that read
   * whole files (Parquet, Avro container files, CSV with a header) decode
   * them themselves from these rather than record by record through `format`.
   */
  formatName?: string;
  formatOptions?: Record<string, unknown>;
  /**
   * Reports a record that could not be read. Under `bad_data = 'drop'` it is
   * counted and the call returns; under `'fail'` it throws and the job stops.
   * `position` says where the record was (file line, partition and offset...).
   */
  badRecord(position: string, error: unknown): void;
  /** Split positions restored from the last checkpoint, from every subtask (keyed by split id). */
  restored: Record<string, unknown>;
  /**
   * Positions in `fields` of the columns the query reads, ascending; undefined
   * means all. The reader may leave the others null (skip decoding or generating them).
   */
  columnsRead?: number[];
  /**
   * For struct columns the query reads only through their fields
   * (`bid.auction`), the names of the fields it reads, by column position. The
   * reader may leave the other fields out of those structs.
   */
  fieldsRead?: Record<number, string[]>;
  /**
   * With `filters: ["not_null"]`: a row whose columns at these positions are
   * all null may be left out (the query reads it nowhere: a pushed-down
   * `WHERE col IS NOT NULL` of every consumer). Undefined: keep every row.
   */
  notNull?: number[];
  /**
   * Keys of the table's `METADATA FROM '...'` columns, in order (from the
   * connector's `metadata` list). The reader appends their values to each row
   * after the format's columns; `fields` ends with those columns.
   */
  metadata?: string[];
}

/** A batch read from one split (a partition, a file, a generator instance). */
export interface SplitBatch {
  split: string;
  rows: Row[];
  /** Event times (µs) the source knows natively, e.g. a message timestamp. */
  times?: number[];
}

export type SourcePoll = { batches: SplitBatch[] } | { end: true };

export interface SourceReader {
  /**
   * Splits this subtask reads now; a subtask with none is idle from the start.
   * A split that leaves the list (finished, e.g. a closed Kinesis shard) stops
   * holding the watermark back at once.
   */
  splits(): string[];
  /**
   * Returns what is available, up to about `maxRows` rows. It should not wait
   * longer than ~100 ms when nothing arrives, so the engine can handle
   * checkpoints and idleness; `{ end: true }` once bounded input is exhausted.
   */
  poll(maxRows: number): Promise<SourcePoll> | SourcePoll;
  /** Positions of this subtask's splits (JSON-serialisable), taken at a barrier. */
  snapshot(): Record<string, unknown>;
  /** Called after a checkpoint completed; e.g. to commit consumer offsets for monitoring. */
  onCheckpointComplete?(checkpointId: number): Promise<void> | void;
  close?(): Promise<void> | void;
}

export interface SinkContext<O> extends ConnectorContextBase<O> {
  /** The columns of incoming rows. */
  fields: Field[];
  format?: Serializer;
  /**
   * The table's format by name, with its validated options. Sinks that write
   * whole files (Parquet, whose encoding is per file rather than per record)
   * read these instead of `format`.
   */
  formatName?: string;
  formatOptions?: Record<string, unknown>;
  /** True when the input is an updating stream (rows carry ops). */
  updating: boolean;
  /** State of this subtask from the last checkpoint, if restoring. */
  restored?: unknown;
  /**
   * The states of every earlier subtask this one takes over: one normally,
   * several when the job restarts with fewer subtasks than it checkpointed
   * with (`restored` is the first). Sinks that keep work in progress in their
   * state (open files, transactions) must finish or abort all of them.
   */
  restoredAll?: unknown[];
}

/**
 * A sink writer. Exactly-once sinks follow the two-phase protocol: at each
 * barrier `prepareCommit` stages what was written and returns a description that
 * is stored in the checkpoint; once the checkpoint is complete `commit` publishes
 * it. `commit` must be idempotent: after a crash it is called again for the
 * checkpoint being restored.
 */
export interface SinkWriter {
  write(batch: Batch): Promise<void> | void;
  prepareCommit?(checkpointId: number): Promise<unknown> | unknown;
  commit?(checkpointId: number, prepared: unknown): Promise<void> | void;
  /** State kept across restarts (besides prepared commits). */
  snapshot?(): unknown | Promise<unknown>;
  /** Called after a checkpoint completed and the commits it covers were made. */
  onCheckpointComplete?(checkpointId: number): Promise<void> | void;
  close?(): Promise<void> | void;
}

export interface LookupContext<O> extends ConnectorContextBase<O> {
  /** The table's columns in row order: the format's, then the `METADATA FROM` ones. */
  fields: Field[];
  /** Positions in `fields` of the key columns (the PRIMARY KEY), in the order `lookup` receives key values. */
  keyColumns: number[];
  /** Present when the table names a format; it fills the columns before the METADATA FROM ones. */
  format?: Deserializer;
  /** Keys of the table's `METADATA FROM '...'` columns, in order (the last columns of `fields`). */
  metadata?: string[];
}

/**
 * Reads rows by key for a lookup join. The engine calls `lookup` once per input
 * batch with the batch's distinct keys that its cache does not hold (no NULL
 * key ever reaches it), one at a time per subtask. A rejection fails the job,
 * which restores from its last checkpoint; the message should name the table
 * and what the store answered.
 */
export interface LookupSource {
  /**
   * The row stored under each key (all of `fields`, in order), or null where the
   * store has none: one entry per key, in the keys' order. A key is an array of
   * the key columns' values, in `keyColumns` order.
   */
  lookup(keys: unknown[][]): Promise<(Row | null)[]>;
  close?(): Promise<void> | void;
}

export interface TableInfo<O> {
  name: string;
  options: O;
  fields: Field[];
  /** "lookup": a table joined by key (`type = 'lookup'`), read through the connector's `lookup`. */
  role: "source" | "sink" | "lookup";
  /** Names of the PRIMARY KEY columns, when the table declares one (a lookup table's key). */
  primaryKey?: string[];
  /** Keys of the `METADATA FROM '...'` columns, which are the last `metadata.length` of `fields`. */
  metadata?: string[];
  /** Local files the job may use; absent means unrestricted. */
  files?: FileAccess;
  /** The table's format, when it names one (its options validated). */
  format?: { name: string; options: Record<string, unknown> };
}

/** How the job a table runs in is set up, for checks that depend on it. */
export interface JobSettings {
  /** 0 when checkpoints are not periodic. */
  checkpointIntervalMs: number;
  parallelism: number;
}

/** A value a connector can put in a `col TYPE METADATA FROM 'key'` column. */
export interface MetadataSpec {
  type: SqlType;
  description?: string;
}

export interface ConnectorDefinition<S extends OptionsShape = OptionsShape> {
  name: string;
  description?: string;
  options: S;
  /**
   * Columns the connector always provides (impulse, nexmark). A table may
   * declare any subset of them, or none to take them all.
   */
  columns?(options: OptionValues<S>): Field[];
  /** Extra checks at planning time; throw an Error naming the option at fault. */
  validate?(table: TableInfo<OptionValues<S>>): void;
  /**
   * Checks that need the outside world or the job's settings (is the service
   * reachable, does the topic exist, does a timeout outlast the checkpoint
   * interval), run before a job starts. Throw an Error that says what to fix.
   */
  preflight?(table: TableInfo<OptionValues<S>>, job: JobSettings): Promise<void> | void;
  /**
   * Values a source can fill into columns declared `METADATA FROM 'key'`
   * (a Kafka record's offset, partition...), by key.
   */
  metadata?: Record<string, MetadataSpec>;
  /** Whether a table of this connector needs a `format`. */
  needsFormat?: boolean;
  source?: {
    create(ctx: SourceContext<OptionValues<S>>): SourceReader | Promise<SourceReader>;
    /**
     * Filters the reader can apply itself, which the planner then pushes down
     * (the query still applies them, so applying one in part is fine):
     * "not_null" is `SourceContext.notNull`. Declare one only where leaving
     * rows out cannot change which rows are late: each split's times never
     * decrease (a generator's), since left-out rows set no watermark.
     */
    filters?: "not_null"[];
  };
  /**
   * Declares the connector a lookup source: a table declared with
   * `type = 'lookup'` (or CREATE TEMPORARY TABLE) is joined by its PRIMARY KEY
   * (`JOIN t ON stream.col = t.key`), each batch's distinct keys read at once.
   * `validate` sees such a table with role "lookup".
   */
  lookup?: {
    create(ctx: LookupContext<OptionValues<S>>): LookupSource | Promise<LookupSource>;
  };
  sink?: {
    create(ctx: SinkContext<OptionValues<S>>): SinkWriter | Promise<SinkWriter>;
    /** Run with at most this many subtasks (a single file: 1). */
    maxParallelism?: number;
    /** Whether the sink accepts updating streams (with a suitable format). */
    updating?: boolean;
  };
}

// ---------------------------------------------------------------- functions

export interface UdfDefinition {
  name: string;
  args: SqlType[];
  returns: SqlType;
  /** Called per row; null arguments are passed through unless `strict` (then null in → null out). */
  fn: (...args: any[]) => unknown;
  strict?: boolean;
  /**
   * An async UDF: `fn` returns a Promise (an `async` function is one without saying
   * so). Its calls run concurrently, outside the expression that uses it.
   */
  async?: boolean | AsyncUdfOptions;
}

export interface AsyncUdfOptions {
  /** Emit results in input order (the default), or as calls complete. */
  ordered?: boolean;
  /** Calls in flight at once per subtask (default 100). */
  allowedInFlight?: number;
  /** A call taking longer fails (default 5000 ms). */
  timeoutMs?: number;
}

/** A user-defined aggregate with JSON-serialisable accumulator state (so it checkpoints). */
export interface UdafDefinition<S = unknown> {
  name: string;
  args: SqlType[];
  returns: SqlType;
  init(): S;
  add(state: S, ...args: any[]): S;
  /** Undo an `add`; needed for updating aggregates. */
  retract?(state: S, ...args: any[]): S;
  merge?(a: S, b: S): S;
  result(state: S): unknown;
}

// ---------------------------------------------------------------- checkpoint storage

/**
 * Blob storage for checkpoints under a URL scheme (`s3://bucket/prefix`). The
 * engine does the rest (naming, versions, picking the latest complete one);
 * a storage only keeps whole objects. `put` must be atomic: an object is
 * either there whole or not at all (as S3 PUTs are).
 */
export interface ObjectStorage {
  put(key: string, data: Uint8Array): Promise<void>;
  /** undefined when there is no such object. */
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * Bytes [start, start + length) of an object (an HTTP range read), so a restore
   * reads only the key groups it owns; without it the whole object is fetched.
   * A negative start counts from the end (the last -start bytes).
   */
  getRange?(key: string, start: number, length: number): Promise<Uint8Array>;
  /** Keys under a prefix (relative to the storage's root), in any order. */
  list(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
  /** Fails with a message saying what to fix when the storage can't be used (missing bucket, bad credentials). */
  check?(): Promise<void>;
}

export interface StorageDefinition {
  /** URL scheme handled, without "://" (e.g. "s3"). */
  scheme: string;
  description?: string;
  /** `url` is the whole location (`s3://bucket/prefix/job`); settings come from the environment. */
  create(url: string): ObjectStorage;
}

// ---------------------------------------------------------------- schedulers

/** A worker process the job manager wants started, and how. */
export interface WorkerSpec {
  index: number;
  /** The command that runs a worker (Bun and Runnel's worker entry point). */
  command: string[];
  /** What the worker needs to find its manager: address, job secret, epoch, its index and listen address. */
  env: Record<string, string>;
}

export interface WorkerProcess {
  /** For messages: "pid 1234", "pod runnel-job-1-worker-0"... */
  readonly name: string;
  /** Resolves with the exit code (null: killed by a signal, or unknown). */
  readonly exited: Promise<number | null>;
  kill(): void;
}

export interface SchedulerContext {
  jobId: string;
  log: PluginLogger;
  options: Record<string, unknown>;
  /** Where the job's checkpoints live (a local path or a storage URL): workers elsewhere must reach the same place. */
  stateDir?: string;
}

/**
 * Starts the worker processes of jobs spread over processes or machines: local
 * processes, Kubernetes pods... A scheduler that starts nothing (returns null)
 * leaves workers to register with the job manager on their own.
 */
export interface SchedulerDefinition {
  name: string;
  description?: string;
  start(spec: WorkerSpec, ctx: SchedulerContext): WorkerProcess | null | Promise<WorkerProcess | null>;
}

export function defineScheduler(s: SchedulerDefinition): SchedulerDefinition {
  return s;
}

// ---------------------------------------------------------------- plugins

export interface PluginDefinition {
  name: string;
  version?: string;
  apiVersion?: number;
  connectors?: ConnectorDefinition<any>[];
  formats?: FormatDefinition<any>[];
  udfs?: UdfDefinition[];
  udafs?: UdafDefinition<any>[];
  /** Checkpoint storage for URL schemes other than local paths. */
  storages?: StorageDefinition[];
  /** Ways to start a job's worker processes. */
  schedulers?: SchedulerDefinition[];
}

// Identity helpers: they exist for type inference, as Vite's defineConfig does.
export function definePlugin(plugin: PluginDefinition): PluginDefinition {
  return { apiVersion: PLUGIN_API_VERSION, ...plugin };
}
export function defineConnector<S extends OptionsShape>(c: ConnectorDefinition<S>): ConnectorDefinition<S> {
  return c;
}
export function defineFormat<S extends OptionsShape>(f: FormatDefinition<S>): FormatDefinition<S> {
  return f;
}
export function defineUdf(u: UdfDefinition): UdfDefinition {
  return u;
}
export function defineUdaf<S>(u: UdafDefinition<S>): UdafDefinition<S> {
  return u;
}
export function defineStorage(s: StorageDefinition): StorageDefinition {
  return s;
}

// ---------------------------------------------------------------- crash tests

/**
 * A named place where crash tests may kill the process. With
 * `RUNNEL_CRASH_AT=name` (or `name:N` for the N-th time it is reached) the
 * process kills itself with SIGKILL there, which is how tests hit the narrow
 * windows (after a checkpoint completes but before a sink commits...) that
 * random kills rarely find. Costs one comparison when unset. A worker process
 * started for the job also kills the process named by `RUNNEL_CRASH_TAKES`
 * (its job manager), so a crash test kills the whole job wherever the point is
 * reached, as losing the job's machine would.
 */
const crashAt = typeof process !== "undefined" ? process.env.RUNNEL_CRASH_AT : undefined;
const crashSpec = crashAt ? { name: crashAt.split(":")[0]!, nth: Number(crashAt.split(":")[1] ?? 1) } : null;
let crashHits = 0;
export function crashPoint(name: string): void {
  if (crashSpec === null || crashSpec.name !== name) return;
  if (++crashHits < crashSpec.nth) return;
  const takes = Number(process.env.RUNNEL_CRASH_TAKES);
  if (takes > 0) process.kill(takes, "SIGKILL");
  process.kill(process.pid, "SIGKILL");
}
