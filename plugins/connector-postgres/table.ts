/**
 * The target table as PostgreSQL describes it: name resolution, the columns
 * the sink writes and whether their types can hold Runnel's values, the unique
 * index upserts need, and the DDL for `sink.create_table`.
 */
import type postgres from "postgres";
import { typeName, type Field, type SqlType } from "../../core/plugin-api/index.ts";

export type Sql = postgres.Sql<{}>;

/** How a sink column's value is turned into JSON that PostgreSQL reads into the column's type. */
export type Encoding = "plain" | "timestamp" | "interval" | "bytes" | "json-text" | "nested";

export interface TargetColumn {
  /** The sink field's position in incoming rows. */
  field: number;
  /** The column's name in PostgreSQL (may differ in case from the field's). */
  name: string;
  encoding: Encoding;
  /** The value's type, for "nested" values (holding a MAP) written as JSON. */
  type?: SqlType;
}

export interface TargetTable {
  /** Quoted, schema-qualified name for statements. */
  qualified: string;
  /** Quoted schema name, for the sink's bookkeeping tables beside the target. */
  schema: string;
  columns: TargetColumn[];
}

export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * Splits `schema.table` as PostgreSQL reads a name: unquoted parts fold to
 * lower case, double-quoted parts keep theirs. Returns the quoted parts.
 */
export function parseTableName(text: string): { schema: string | null; table: string } {
  const parts: string[] = [];
  let i = 0;
  const s = text.trim();
  while (i < s.length) {
    let part = "";
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw new Error(`option 'table_name': unterminated quote in '${text}'`);
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            part += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        part += s[i++];
      }
    } else {
      while (i < s.length && s[i] !== ".") part += s[i++];
      part = part.trim().toLowerCase();
    }
    if (part === "") throw new Error(`option 'table_name': '${text}' is not a table name (table or schema.table)`);
    parts.push(part);
    if (i < s.length) {
      if (s[i] !== ".") throw new Error(`option 'table_name': unexpected '${s[i]}' in '${text}'`);
      i++;
    }
  }
  if (parts.length === 0 || parts.length > 2) throw new Error(`option 'table_name': '${text}' is not a table name (table or schema.table)`);
  return parts.length === 2 ? { schema: quoteIdent(parts[0]!), table: quoteIdent(parts[1]!) } : { schema: null, table: quoteIdent(parts[0]!) };
}

export function qualifiedName(text: string): string {
  const { schema, table } = parseTableName(text);
  return schema ? `${schema}.${table}` : table;
}

/** PostgreSQL types (pg_type.typname, or a category) a column of this SQL type may be written to. */
function accepts(type: SqlType, pg: { typname: string; category: string; typtype: string }): Encoding | null {
  const t = pg.typname;
  const numeric = ["int2", "int4", "int8", "numeric", "float4", "float8"];
  switch (type.kind) {
    case "boolean":
      return t === "bool" ? "plain" : null;
    case "int":
    case "float":
    case "decimal":
      return numeric.includes(t) ? "plain" : null;
    case "string":
      return ["text", "varchar", "bpchar", "name", "uuid", "citext"].includes(t) || pg.typtype === "e" ? "plain" : null;
    case "json":
      return t === "json" || t === "jsonb" ? "json-text" : ["text", "varchar"].includes(t) ? "plain" : null;
    case "timestamp":
      return t === "timestamptz" || t === "timestamp" ? "timestamp" : t === "int8" || t === "numeric" ? "plain" : null;
    case "interval":
      return t === "interval" ? "interval" : t === "int8" || t === "numeric" ? "plain" : null;
    case "bytes":
      return t === "bytea" ? "bytes" : null;
    case "array":
      if (hasMap(type)) return t === "json" || t === "jsonb" ? "nested" : null;
      return pg.category === "A" ? "plain" : t === "json" || t === "jsonb" ? "plain" : null;
    case "struct":
      if (hasMap(type)) return t === "json" || t === "jsonb" ? "nested" : null;
      return t === "json" || t === "jsonb" || pg.typtype === "c" ? "plain" : null;
    case "map":
      // An object keyed by the keys' text.
      return t === "json" || t === "jsonb" ? "nested" : null;
  }
}

const hasMap = (type: SqlType): boolean =>
  type.kind === "map" || (type.kind === "array" && hasMap(type.element)) || (type.kind === "struct" && type.fields.some((f) => hasMap(f.type)));

/** The PostgreSQL type `sink.create_table` gives a column of this SQL type. */
export function columnType(type: SqlType): string {
  switch (type.kind) {
    case "boolean":
      return "boolean";
    case "int":
      return type.unsigned && type.bits === 64 ? "numeric(20)" : type.bits === 32 ? "integer" : "bigint";
    case "float":
      return type.bits === 32 ? "real" : "double precision";
    case "decimal":
      return `numeric(${type.precision},${type.scale})`;
    case "string":
      return "text";
    case "json":
    case "struct":
    case "map":
      return "jsonb";
    case "timestamp":
      return "timestamptz";
    case "interval":
      return "interval";
    case "bytes":
      return "bytea";
    case "array":
      return type.element.kind === "array" || type.element.kind === "struct" || type.element.kind === "map" ? "jsonb" : `${columnType(type.element)}[]`;
  }
}

export function createTableSql(qualified: string, fields: Field[], primaryKey: string[] | null): string {
  const cols = fields.map((f) => `${quoteIdent(f.name)} ${columnType(f.type)}${f.nullable && !primaryKey?.includes(f.name) ? "" : " NOT NULL"}`);
  if (primaryKey) cols.push(`PRIMARY KEY (${primaryKey.map(quoteIdent).join(", ")})`);
  return `CREATE TABLE IF NOT EXISTS ${qualified} (${cols.join(", ")})`;
}

/** The table's oid, or null when there is no such table. */
export async function findTable(sql: Sql, name: string): Promise<number | null> {
  const [row] = await sql.unsafe(`SELECT to_regclass($1)::oid AS oid`, [qualifiedName(name)]);
  return row?.oid ? Number(row.oid) : null;
}

/**
 * Matches the sink's fields to the table's columns (same name, or the same
 * ignoring case when that is unambiguous) and checks each type can hold the
 * field's values. Throws an Error naming `table_name` and the column.
 */
export async function describeTarget(sql: Sql, oid: number, optionName: string, fields: Field[]): Promise<TargetTable> {
  const rows = await sql.unsafe(
    `SELECT a.attname AS name, t.typname, t.typcategory AS category, t.typtype, a.attnotnull AS notnull, a.atthasdef AS hasdef,
            n.nspname AS schema, format('%I.%I', n.nspname, c.relname) AS qualified
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
       LEFT JOIN pg_type t ON t.oid = a.atttypid
      WHERE c.oid = $1 ORDER BY a.attnum`,
    [oid],
  );
  if (rows.length === 0) throw new Error(`option 'table_name': table '${optionName}' disappeared`);
  const qualified = rows[0]!.qualified as string;
  const have = rows.filter((r) => r.name !== null) as unknown as { name: string; typname: string; category: string; typtype: string; notnull: boolean; hasdef: boolean }[];
  const listed = have.map((c) => `${c.name} ${c.typname}`).join(", ");
  const columns: TargetColumn[] = [];
  fields.forEach((f, i) => {
    let col = have.find((c) => c.name === f.name);
    if (!col) {
      const folded = have.filter((c) => c.name.toLowerCase() === f.name.toLowerCase());
      if (folded.length === 1) col = folded[0];
    }
    if (!col) {
      throw new Error(
        `option 'table_name': table ${qualified} has no column '${f.name}' (it has ${listed || "no columns"}); ` +
          `add the column, or select only the table's columns`,
      );
    }
    const encoding = accepts(f.type, col);
    if (encoding === null) {
      throw new Error(
        `option 'table_name': column ${qualified}.${col.name} is ${col.typname}, which cannot hold the ${typeName(f.type)} values of '${f.name}'; ` +
          `change the column's type or cast the value in the query`,
      );
    }
    columns.push({ field: i, name: col.name, encoding, ...(encoding === "nested" ? { type: f.type } : {}) });
  });
  const written = new Set(columns.map((c) => c.name));
  const unfilled = have.filter((c) => c.notnull && !c.hasdef && !written.has(c.name));
  if (unfilled.length > 0) {
    throw new Error(
      `option 'table_name': table ${qualified} has NOT NULL column(s) without a default the sink does not write (${unfilled.map((c) => c.name).join(", ")}); ` +
        `give them a default or add them to the query`,
    );
  }
  return { qualified, schema: quoteIdent(rows[0]!.schema as string), columns };
}

/** Whether the table has a primary key or a unique index on exactly these columns (what ON CONFLICT needs). */
export async function hasUniqueIndexOn(sql: Sql, oid: number, columns: string[]): Promise<boolean> {
  const rows = await sql.unsafe(
    `SELECT array_agg(a.attname::text) AS cols
       FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
      GROUP BY i.indexrelid`,
    [oid],
  );
  const want = [...columns].sort().join(",");
  return rows.some((r) => [...(r.cols as string[])].sort().join(",") === want);
}
