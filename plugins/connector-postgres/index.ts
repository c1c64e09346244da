/**
 * `postgres`: a sink writing rows into a PostgreSQL table, exactly-once
 * through the engine's two-phase commit (see sink.ts), appending rows or
 * applying an updating result as upserts and deletes by a key; and a lookup
 * table (`type = 'lookup'`) read by key in lookup joins (see lookup.ts).
 *
 * The client is postgres.js: the control plane already uses it for its own
 * database, it pins a transaction to one connection (`sql.begin`), passes
 * parameters without client-side type guessing (`unsafe(text, params)`), and
 * reports server errors with their SQLSTATE, which the messages here rely on.
 */
import { defineConnector, definePlugin, type JobSettings, type LookupContext, type SinkContext, type TableInfo } from "../../core/plugin-api/index.ts";
import { PostgresLookup, validateLookup } from "./lookup.ts";
import { connect, explainConnectionError, postgresOptions, primaryKey, type PostgresOptions } from "./options.ts";
import { openTarget, PostgresSinkWriter } from "./sink.ts";
import { parseTableName } from "./table.ts";

function validate(info: TableInfo<unknown>): void {
  const table = info as TableInfo<PostgresOptions>;
  const o = table.options;
  if (o.connection_string === undefined && o.host === undefined) {
    throw new Error("set option 'connection_string' (postgres://user:password@host:port/database), or 'host' with 'database', 'user' and 'password'");
  }
  if (o.connection_string !== undefined && !/^postgres(ql)?:\/\//i.test(o.connection_string.trim())) {
    throw new Error("option 'connection_string' must be a URL starting with postgres:// or postgresql://");
  }
  parseTableName(o.table_name);
  if (table.role === "lookup") return validateLookup(table);
  const key = primaryKey(o);
  if (key === null) {
    if (o["sink.primary_key"] !== undefined) throw new Error("option 'sink.primary_key' is only used with sink.mode = 'upsert'");
    return;
  }
  if (key.length === 0) throw new Error("sink.mode = 'upsert' needs option 'sink.primary_key': the key columns, comma-separated");
  if (table.fields.length > 0) {
    for (const k of key) {
      if (!table.fields.some((f) => f.name.toLowerCase() === k.toLowerCase())) {
        throw new Error(`option 'sink.primary_key': no column '${k}'; the columns are ${table.fields.map((f) => f.name).join(", ")}`);
      }
    }
  }
}

/** Before the job starts: the server answers, and the table exists with columns that fit (unless the sink will create it). */
async function preflight(info: TableInfo<unknown>, _job: JobSettings): Promise<void> {
  const table = info as TableInfo<PostgresOptions>;
  const o = table.options;
  if (table.role === "lookup") {
    const keyColumns = (table.primaryKey ?? []).map((k) => table.fields.findIndex((f) => f.name === k));
    const lookup = await PostgresLookup.create({ ...lookupCheck, options: o, tableName: table.name, fields: table.fields, keyColumns });
    await lookup.close();
    return;
  }
  const sql = connect(o, 1);
  try {
    await openTarget(sql, o, table.fields, false);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== undefined) throw explainConnectionError(err, o);
    throw err;
  } finally {
    await sql.end({ timeout: 1 }).catch(() => {});
  }
}

/** What a lookup opened only to check the table (in preflight) needs of a context. */
const lookupCheck = {
  subtaskIndex: 0,
  parallelism: 1,
  startTimeMicros: 0,
  signal: new AbortController().signal,
  log: { info() {}, warn() {} },
  metrics: { add() {}, set() {} },
};

export const postgresConnector = defineConnector({
  name: "postgres",
  description: "PostgreSQL table sink: exactly-once appends, or upserts and deletes by key for updating results; lookup table read by key",
  options: postgresOptions,
  validate,
  preflight,
  sink: {
    create: (ctx) => PostgresSinkWriter.create(ctx as SinkContext<PostgresOptions>),
    updating: true,
  },
  lookup: {
    create: (ctx) => PostgresLookup.create(ctx as LookupContext<PostgresOptions>),
  },
});

export default definePlugin({ name: "connector-postgres", version: "0.1.0", connectors: [postgresConnector] });
