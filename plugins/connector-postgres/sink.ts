/**
 * The PostgreSQL sink writer: exactly-once through a staging table.
 *
 * Rows are encoded as JSON objects keyed by column and written, in chunks of a
 * few thousand, to `runnel_sink_staging` (beside the target table) under a
 * batch id that is new for every checkpoint. At the barrier the last chunk is
 * written and the batch (id, chunk count) is what the checkpoint records. Once
 * the checkpoint completes, one transaction moves the batch into the target
 * table (INSERT ... SELECT, or in upsert mode the last change per key as an
 * upsert or a delete), deletes it from staging and records it in
 * `runnel_sink_commits`; a batch found there was committed before, so a
 * commit replayed after a crash does nothing.
 *
 * Why not PREPARE TRANSACTION: it needs `max_prepared_transactions` > 0 (off
 * by default, and on many managed servers), and a prepared transaction left
 * behind by a job that does not come back keeps its locks (on upserted rows,
 * and against DDL on the table) and holds back VACUUM until someone rolls it
 * back by hand. Staged rows left behind cost only disk, and the next start
 * deletes them. The price is writing each row twice.
 *
 * Recovery: a starting subtask deletes the staged batches of former subtasks
 * j with j mod parallelism = its index (its own included), except the batches
 * of the restored checkpoint, which the engine then commits. Those are
 * batches of checkpoints that never completed. A subtask never touches
 * another's batches, so subtasks that start at different moments cannot
 * delete each other's fresh rows.
 */
import { randomUUID } from "node:crypto";
import type { Batch, Row, SinkContext, SinkWriter } from "../../core/plugin-api/index.ts";
import { RowOp } from "../../core/plugin-api/index.ts";
import { formatTimestamp } from "../shared/time.ts";
import { connect, explainConnectionError, primaryKey, type PostgresOptions } from "./options.ts";
import { createTableSql, describeTarget, findTable, hasUniqueIndexOn, qualifiedName, quoteIdent, type Sql, type TargetColumn, type TargetTable } from "./table.ts";
import { toJsonText } from "../shared/nested-json.ts";

const CHUNK_ROWS = 4096;
/** Characters of JSON per chunk before it is sent, whatever its row count. */
const CHUNK_CHARS = 4 << 20;
const DELETE_MARK = "$op";

/** What the checkpoint records of a batch to commit. */
export interface PreparedBatch {
  version: 1;
  batch: string;
  sink: string;
  subtask: number;
  chunks: number;
  rows: number;
}

/** Writer state kept in the checkpoint: the batch prepared at that checkpoint, kept from cleanup on restore. */
export interface PostgresSinkState {
  version: 1;
  pending: string | null;
}

/** Opens the target table as the options describe it, creating it when `sink.create_table` asks. */
export async function openTarget(sql: Sql, o: PostgresOptions, fields: SinkContext<PostgresOptions>["fields"], create: boolean): Promise<{ table: TargetTable; oid: number } | null> {
  let oid = await findTable(sql, o.table_name);
  if (oid === null && create && o["sink.create_table"]) {
    const ddl = createTableSql(qualifiedName(o.table_name), fields, primaryKey(o));
    await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(hashtext('runnel_sink_create_table'))`;
      await tx.unsafe(ddl);
    });
    oid = await findTable(sql, o.table_name);
  }
  if (oid === null) {
    if (o["sink.create_table"]) return null;
    throw new Error(`option 'table_name': table '${o.table_name}' does not exist; create it, or set sink.create_table = 'true' to have the sink create it`);
  }
  const table = await describeTarget(sql, oid, o.table_name, fields);
  const key = primaryKey(o);
  if (key) {
    const names = key.map((k) => table.columns.find((c) => fields[c.field]!.name.toLowerCase() === k.toLowerCase())?.name ?? k);
    if (!(await hasUniqueIndexOn(sql, oid, names))) {
      throw new Error(
        `option 'sink.primary_key': table ${table.qualified} has no primary key or unique index on exactly (${names.join(", ")}), which upserts need; ` +
          `add one (ALTER TABLE ... ADD PRIMARY KEY (${names.join(", ")})), or name the columns of the existing key`,
      );
    }
  }
  return { table, oid };
}

export class PostgresSinkWriter implements SinkWriter {
  private readonly sql: Sql;
  private table!: TargetTable;
  private sinkId!: string;
  private staging!: string;
  private commits!: string;
  private applySql!: string;
  private readonly upsert: boolean;
  private keyFields: number[] = [];
  /** Encoders of each column, in `table.columns` order: a JSON key prefix and how to encode the value. */
  private encoders: { prefix: string; column: TargetColumn }[] = [];

  private batch: string | null = null;
  private chunks = 0;
  private rows = 0;
  private buffer: string[] = [];
  private bufferChars = 0;
  private sending: Promise<void> = Promise.resolve();
  private sendError: unknown = null;
  private pending: string | null = null;

  private constructor(private readonly ctx: SinkContext<PostgresOptions>) {
    this.sql = connect(ctx.options);
    this.upsert = ctx.options["sink.mode"] === "upsert";
  }

  static async create(ctx: SinkContext<PostgresOptions>): Promise<PostgresSinkWriter> {
    const o = ctx.options;
    if (ctx.updating && o["sink.mode"] !== "upsert") {
      throw new Error(
        `the query into '${ctx.tableName}' gives an updating result (updates and deletes); set sink.mode = 'upsert' with sink.primary_key to apply them to ${o.table_name}`,
      );
    }
    const writer = new PostgresSinkWriter(ctx);
    try {
      await writer.open();
    } catch (err) {
      await writer.sql.end({ timeout: 1 }).catch(() => {});
      const code = (err as { code?: string }).code;
      if (code && !/^[0-9A-Z]{5}$/.test(code) || code === "28P01" || code === "28000" || code === "3D000") throw explainConnectionError(err, o);
      throw err;
    }
    return writer;
  }

  private async open(): Promise<void> {
    const ctx = this.ctx;
    const o = ctx.options;
    const target = await openTarget(this.sql, o, ctx.fields, true);
    this.table = target!.table;
    this.sinkId = o["sink.id"] ?? `${ctx.tableName}:${this.table.qualified}`;
    this.staging = `${this.table.schema}.runnel_sink_staging`;
    this.commits = `${this.table.schema}.runnel_sink_commits`;
    const key = primaryKey(o);
    if (key) {
      this.keyFields = key.map((k) => ctx.fields.findIndex((f) => f.name.toLowerCase() === k.toLowerCase()));
    }
    this.encoders = this.table.columns.map((column) => ({ prefix: `${JSON.stringify(column.name)}:`, column }));
    this.applySql = this.buildApplySql();
    await this.sql.begin(async (tx) => {
      // Several subtasks (and jobs) may start at once; CREATE ... IF NOT EXISTS alone can still collide.
      await tx`SELECT pg_advisory_xact_lock(hashtext('runnel_sink_bookkeeping'))`;
      await tx.unsafe(
        `CREATE TABLE IF NOT EXISTS ${this.staging} (batch uuid NOT NULL, chunk integer NOT NULL, sink text NOT NULL, subtask integer NOT NULL, rows jsonb NOT NULL, PRIMARY KEY (batch, chunk))`,
      );
      await tx.unsafe(`CREATE INDEX IF NOT EXISTS runnel_sink_staging_owner ON ${this.staging} (sink, subtask)`);
      await tx.unsafe(
        `CREATE TABLE IF NOT EXISTS ${this.commits} (batch uuid PRIMARY KEY, sink text NOT NULL, subtask integer NOT NULL, checkpoint_id bigint NOT NULL, rows bigint NOT NULL, committed_at timestamptz NOT NULL DEFAULT now())`,
      );
    });
    const restored = (ctx.restoredAll ?? (ctx.restored ? [ctx.restored] : [])) as (PostgresSinkState | null | undefined)[];
    const keep = restored.map((s) => s?.pending).filter((b): b is string => typeof b === "string");
    await this.sql.unsafe(
      `DELETE FROM ${this.staging} WHERE sink = $1 AND subtask % $2 = $3 AND NOT (batch = ANY($4::uuid[]))`,
      [this.sinkId, ctx.parallelism, ctx.subtaskIndex, keep],
    );
  }

  private buildApplySql(): string {
    const t = this.table.qualified;
    const cols = this.table.columns.map((c) => quoteIdent(c.name));
    const staged =
      `FROM ${this.staging} s CROSS JOIN LATERAL jsonb_array_elements(s.rows) WITH ORDINALITY AS e(v, i) ` +
      `CROSS JOIN LATERAL jsonb_populate_record(NULL::${t}, e.v) AS r WHERE s.batch = $1`;
    if (!this.upsert) {
      return `INSERT INTO ${t} (${cols.join(", ")}) SELECT ${cols.map((c) => `r.${c}`).join(", ")} ${staged} ORDER BY s.chunk, e.i`;
    }
    const keys = this.keyFields.map((f) => quoteIdent(this.table.columns.find((c) => c.field === f)!.name));
    const rest = cols.filter((c) => !keys.includes(c));
    const deleted = `"$runnel_deleted"`;
    return (
      `WITH last AS (SELECT DISTINCT ON (${keys.map((k) => `r.${k}`).join(", ")}) (e.v ? '${DELETE_MARK}') AS ${deleted}, ${cols.map((c) => `r.${c}`).join(", ")} ` +
      `${staged} ORDER BY ${keys.map((k) => `r.${k}`).join(", ")}, s.chunk DESC, e.i DESC), ` +
      `gone AS (DELETE FROM ${t} AS t USING last WHERE last.${deleted} AND ${keys.map((k) => `t.${k} = last.${k}`).join(" AND ")}) ` +
      `INSERT INTO ${t} (${cols.join(", ")}) SELECT ${cols.map((c) => `last.${c}`).join(", ")} FROM last WHERE NOT last.${deleted} ` +
      `ON CONFLICT (${keys.join(", ")}) DO ${rest.length === 0 ? "NOTHING" : `UPDATE SET ${rest.map((c) => `${c} = EXCLUDED.${c}`).join(", ")}`}`
    );
  }

  write(batch: Batch): void | Promise<void> {
    if (this.sendError) throw this.sendError;
    if (this.buffer.length + batch.rows.length <= CHUNK_ROWS) {
      this.encodeRows(batch, 0, batch.rows.length);
      if (this.buffer.length >= CHUNK_ROWS || this.bufferChars >= CHUNK_CHARS) return this.send();
      return;
    }
    return this.writeInChunks(batch);
  }

  /** A large batch is sent as it is encoded, so a chunk stays near CHUNK_ROWS rows. */
  private async writeInChunks(batch: Batch): Promise<void> {
    for (let from = 0; from < batch.rows.length; ) {
      const to = Math.min(batch.rows.length, from + CHUNK_ROWS - this.buffer.length);
      this.encodeRows(batch, from, to);
      from = to;
      if (this.buffer.length >= CHUNK_ROWS || this.bufferChars >= CHUNK_CHARS) await this.send();
    }
  }

  private encodeRows(batch: Batch, from: number, to: number): void {
    const { rows, ops, before } = batch;
    for (let i = from; i < to; i++) {
      const op = ops ? ops[i]! : RowOp.Insert;
      if (op === RowOp.Delete) {
        this.push(this.encode(rows[i]!, true));
        continue;
      }
      // An update that moves a row to another key removes the old key first.
      if (op === RowOp.Update && this.upsert && before?.[i] && !this.sameKey(before[i]!, rows[i]!)) this.push(this.encode(before[i]!, true));
      this.push(this.encode(rows[i]!, false));
    }
  }

  private sameKey(a: Row, b: Row): boolean {
    for (const k of this.keyFields) if (a[k] !== b[k]) return false;
    return true;
  }

  private push(json: string): void {
    this.buffer.push(json);
    this.bufferChars += json.length;
    this.rows++;
  }

  private encode(row: Row, deleted: boolean): string {
    let out = deleted ? `{"${DELETE_MARK}":1` : "{";
    let first = !deleted;
    for (const { prefix, column } of this.encoders) {
      out += first ? prefix : "," + prefix;
      first = false;
      out += column.type ? toJsonText(column.type, row[column.field]) : encodeValue(row[column.field], column.encoding);
    }
    return out + "}";
  }

  /** Sends the buffered rows as one chunk after the chunk in flight (at most one in flight: backpressure). */
  private async send(): Promise<void> {
    await this.sending;
    if (this.sendError) throw this.sendError;
    if (this.buffer.length === 0) return;
    const json = `[${this.buffer.join(",")}]`;
    this.buffer = [];
    this.bufferChars = 0;
    this.batch ??= randomUUID();
    const chunk = this.chunks++;
    this.sending = this.sql
      .unsafe(`INSERT INTO ${this.staging} (batch, chunk, sink, subtask, rows) VALUES ($1, $2, $3, $4, $5::text::jsonb)`, [
        this.batch,
        chunk,
        this.sinkId,
        this.ctx.subtaskIndex,
        json,
      ])
      .then(
        () => {},
        (err) => {
          this.sendError = new Error(`postgres sink '${this.ctx.tableName}': staging rows for ${this.table.qualified} failed: ${(err as Error).message}`);
        },
      );
  }

  async prepareCommit(checkpointId: number): Promise<PreparedBatch | null> {
    await this.send();
    await this.sending;
    if (this.sendError) throw this.sendError;
    const batch = this.batch;
    const prepared: PreparedBatch | null =
      batch === null ? null : { version: 1, batch, sink: this.sinkId, subtask: this.ctx.subtaskIndex, chunks: this.chunks, rows: this.rows };
    this.pending = batch;
    this.batch = null;
    this.chunks = 0;
    this.rows = 0;
    void checkpointId;
    return prepared;
  }

  snapshot(): PostgresSinkState {
    return { version: 1, pending: this.pending };
  }

  async commit(checkpointId: number, prepared: unknown): Promise<void> {
    const p = prepared as PreparedBatch;
    if (p?.version !== 1) throw new Error(`postgres sink '${this.ctx.tableName}': checkpoint ${checkpointId} holds a commit record of an unknown version`);
    await this.sql.begin(async (tx) => {
      const fresh = await tx.unsafe(
        `INSERT INTO ${this.commits} (batch, sink, subtask, checkpoint_id, rows) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (batch) DO NOTHING RETURNING batch`,
        [p.batch, p.sink, p.subtask, checkpointId, p.rows],
      );
      if (fresh.length === 0) return; // committed before the crash
      const [staged] = await tx.unsafe(`SELECT count(*)::int AS chunks FROM ${this.staging} WHERE batch = $1`, [p.batch]);
      if (staged!.chunks !== p.chunks) {
        throw new Error(
          `postgres sink '${this.ctx.tableName}': ${p.chunks - staged!.chunks} of ${p.chunks} staged chunks of checkpoint ${checkpointId} (batch ${p.batch}) ` +
            `are missing from ${this.staging}, so its rows cannot be committed; another job with the same sink.id ('${p.sink}') may have removed them`,
        );
      }
      await tx.unsafe(this.applySql, [p.batch]);
      await tx.unsafe(`DELETE FROM ${this.staging} WHERE batch = $1`, [p.batch]);
      // Only the restored checkpoint's batches are ever replayed: older records are not needed.
      await tx.unsafe(`DELETE FROM ${this.commits} WHERE sink = $1 AND subtask = $2 AND checkpoint_id < $3`, [p.sink, p.subtask, checkpointId]);
    });
  }

  async close(): Promise<void> {
    // Staged rows of an unfinished checkpoint stay until the next start removes them.
    await this.sending.catch(() => {});
    await this.sql.end({ timeout: 5 }).catch(() => {});
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/** One value as JSON that jsonb_populate_record reads into the column's type. */
function encodeValue(v: unknown, encoding: TargetColumn["encoding"]): string {
  if (v === null || v === undefined) return "null";
  switch (encoding) {
    case "plain":
      if (typeof v === "number") return Number.isFinite(v) ? String(v) : `"${v}"`;
      if (typeof v === "string") return JSON.stringify(v);
      if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v).toString("base64"));
      return JSON.stringify(v, (_k, x) => (x instanceof Uint8Array ? Buffer.from(x).toString("base64") : x));
    case "timestamp":
      return `"${formatTimestamp(v as number)}"`;
    case "interval":
      return `"${v} microseconds"`;
    case "bytes": {
      const bytes = v as Uint8Array;
      let hex = '"\\\\x';
      for (let i = 0; i < bytes.length; i++) hex += HEX[bytes[i]!];
      return hex + '"';
    }
    case "json-text":
      // JSON columns take the value itself; reparsing keeps bad text from spilling into the row.
      return JSON.stringify(JSON.parse(v as string));
    case "nested":
      throw new Error("nested values are encoded with their type");
  }
}
