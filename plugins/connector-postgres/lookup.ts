/**
 * A PostgreSQL lookup table (`type = 'lookup'`): each call reads the rows of
 * the given keys with one `SELECT ... WHERE key = ANY($1)` (`(a, b) IN
 * (SELECT * FROM unnest($1, $2))` for a composite key), using the table's
 * index. The key is the Runnel table's PRIMARY KEY, which must be a primary
 * key or unique index in PostgreSQL too, so a key never matches two rows.
 * Keys travel as a text array cast to the column's type on the server, and
 * values come back as text (or bytes) read into Runnel's representation here,
 * so no value depends on the driver's guesses.
 */
import { typeName, type Field, type LookupContext, type LookupSource, type Row, type TableInfo } from "../../core/plugin-api/index.ts";
import { connect, explainConnectionError, type PostgresOptions } from "./options.ts";
import { findTable, hasUniqueIndexOn, qualifiedName, quoteIdent, type Sql } from "./table.ts";

/** Column types a lookup reads, and key types it looks up by. */
const READABLE = new Set(["boolean", "int", "float", "decimal", "string", "json", "timestamp", "interval", "bytes"]);
const KEY_TYPES = new Set(["boolean", "int", "float", "decimal", "string"]);

/** Checks a lookup table's declaration at planning time (role "lookup"). */
export function validateLookup(table: TableInfo<PostgresOptions>): void {
  const o = table.options;
  for (const option of ["sink.primary_key", "sink.id"] as const) {
    if (o[option] !== undefined) throw new Error(`option '${option}' is for writing; a lookup table reads rows by its PRIMARY KEY`);
  }
  if (o["sink.create_table"]) throw new Error("option 'sink.create_table' is for writing; a lookup table reads an existing table");
  for (const f of table.fields) {
    if (!READABLE.has(f.type.kind)) throw new Error(`column '${f.name}': a lookup cannot read ${typeName(f.type)} values; declare it JSON and read it with json_get`);
  }
  for (const k of table.primaryKey ?? []) {
    const f = table.fields.find((x) => x.name === k)!;
    if (!KEY_TYPES.has(f.type.kind)) throw new Error(`PRIMARY KEY column '${k}' is ${typeName(f.type)}; a lookup key is TEXT, a number or BOOLEAN`);
  }
}

interface Column {
  field: Field;
  /** The column's name in PostgreSQL and its type as `format_type` writes it. */
  name: string;
  pgType: string;
  typname: string;
}

/** Reads the table's columns from the catalog and checks the key is unique there. */
async function describe(sql: Sql, o: PostgresOptions, fields: Field[], keyColumns: number[]): Promise<{ qualified: string; columns: Column[] }> {
  const oid = await findTable(sql, o.table_name);
  if (oid === null) throw new Error(`option 'table_name': table '${o.table_name}' does not exist; create it, or point 'table_name' at the table to look rows up in`);
  const rows = (await sql.unsafe(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS pg_type, t.typname, format('%I.%I', n.nspname, c.relname) AS qualified
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       JOIN pg_type t ON t.oid = a.atttypid
      WHERE c.oid = $1 ORDER BY a.attnum`,
    [oid],
  )) as unknown as { name: string; pg_type: string; typname: string; qualified: string }[];
  const qualified = rows[0]?.qualified ?? qualifiedName(o.table_name);
  const columns = fields.map((f): Column => {
    const exact = rows.find((r) => r.name === f.name);
    const folded = rows.filter((r) => r.name.toLowerCase() === f.name.toLowerCase());
    const col = exact ?? (folded.length === 1 ? folded[0] : undefined);
    if (!col) {
      throw new Error(`option 'table_name': table ${qualified} has no column '${f.name}' (it has ${rows.map((r) => r.name).join(", ") || "no columns"}); declare only its columns`);
    }
    return { field: f, name: col.name, pgType: col.pg_type, typname: col.typname };
  });
  const keyNames = keyColumns.map((i) => columns[i]!.name);
  if (!(await hasUniqueIndexOn(sql, oid, keyNames))) {
    throw new Error(
      `table ${qualified} has no primary key or unique index on exactly (${keyNames.join(", ")}), so a key could match several rows; ` +
        `add one (ALTER TABLE ... ADD PRIMARY KEY (${keyNames.join(", ")})), or declare the columns of its key as the PRIMARY KEY`,
    );
  }
  return { qualified, columns };
}

/** What is selected for a column: text (or bytes) the reader below turns into Runnel's value. */
function selectExpr(c: Column): string {
  const q = quoteIdent(c.name);
  if (c.field.type.kind === "bytes") return q;
  if ((c.field.type.kind === "timestamp" && (c.typname === "timestamptz" || c.typname === "timestamp")) || (c.field.type.kind === "interval" && c.typname === "interval")) {
    // µs since the epoch (a timestamp without zone read as UTC), exactly: epoch seconds are numeric since PostgreSQL 14.
    return `(extract(epoch from ${q}) * 1000000)::int8::text`;
  }
  return `${q}::text`;
}

function reader(c: Column, table: string): (v: unknown) => unknown {
  const kind = c.field.type.kind;
  const bad = (v: unknown): never => {
    throw new Error(`postgres lookup '${table}': column ${c.name} (${c.pgType}) holds '${String(v)}', which is not a ${typeName(c.field.type)}`);
  };
  switch (kind) {
    case "boolean":
      return (v) => (v === "true" ? true : v === "false" ? false : bad(v));
    case "int":
    case "timestamp":
    case "interval":
      return (v) => {
        const n = Number(v);
        return Number.isSafeInteger(n) ? n : bad(v);
      };
    case "float":
    case "decimal":
      return (v) => {
        const n = Number(v);
        return Number.isNaN(n) && v !== "NaN" ? bad(v) : n;
      };
    case "bytes":
      return (v) => new Uint8Array(v as Uint8Array);
    default:
      return (v) => v;
  }
}

/** A text array literal of the keys' values: `{"a","b"}`. */
function textArray(values: unknown[]): string {
  return `{${values.map((v) => `"${String(v).replace(/[\\"]/g, "\\$&")}"`).join(",")}}`;
}

export class PostgresLookup implements LookupSource {
  private constructor(
    private readonly ctx: LookupContext<PostgresOptions>,
    private readonly sql: Sql,
    private readonly query: string,
    private readonly readers: ((v: unknown) => unknown)[],
  ) {}

  static async create(ctx: LookupContext<PostgresOptions>): Promise<PostgresLookup> {
    const sql = connect(ctx.options, 1);
    try {
      const { qualified, columns } = await describe(sql, ctx.options, ctx.fields, ctx.keyColumns);
      const keys = ctx.keyColumns.map((i) => columns[i]!);
      const where =
        keys.length === 1
          ? `${quoteIdent(keys[0]!.name)} = ANY($1::text[]::${keys[0]!.pgType}[])`
          : `(${keys.map((k) => quoteIdent(k.name)).join(", ")}) IN (SELECT * FROM unnest(${keys.map((k, i) => `$${i + 1}::text[]::${k.pgType}[]`).join(", ")}))`;
      const query = `SELECT ${columns.map(selectExpr).join(", ")} FROM ${qualified} WHERE ${where}`;
      return new PostgresLookup(ctx, sql, query, columns.map((c) => reader(c, ctx.tableName)));
    } catch (err) {
      await sql.end({ timeout: 1 }).catch(() => {});
      throw describeError(err, ctx);
    }
  }

  async lookup(keys: unknown[][]): Promise<(Row | null)[]> {
    if (keys.length === 0) return [];
    const params = this.ctx.keyColumns.map((_, k) => textArray(keys.map((key) => key[k])));
    let rows: unknown[][];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeoutMs = this.ctx.options["lookup.timeout"] / 1000;
    // postgres.js can wait for good on a server that accepts connections and drops them (a proxy before a lost server).
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from PostgreSQL in ${timeoutMs / 1000} s (option 'lookup.timeout')`)), timeoutMs);
    });
    try {
      rows = (await Promise.race([this.sql.unsafe(this.query, params).values(), timeout])) as unknown[][];
    } catch (err) {
      this.ctx.metrics.add("errors_total");
      throw describeError(err, this.ctx);
    } finally {
      clearTimeout(timer);
    }
    const byKey = new Map<string, Row>();
    for (const raw of rows) {
      const row = raw.map((v, i) => (v === null ? null : this.readers[i]!(v)));
      byKey.set(JSON.stringify(this.ctx.keyColumns.map((i) => row[i])), row);
    }
    return keys.map((k) => byKey.get(JSON.stringify(k)) ?? null);
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 1 }).catch(() => {});
  }
}

function describeError(err: unknown, ctx: LookupContext<PostgresOptions>): Error {
  const e = err as { code?: string; message?: string };
  const message = e.code !== undefined ? explainConnectionError(err, ctx.options).message : (e.message ?? String(err));
  return new Error(`postgres lookup '${ctx.tableName}': ${message}`);
}
