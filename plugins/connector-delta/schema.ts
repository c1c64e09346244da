/**
 * The Delta side of a Runnel table: column types as Delta names them (and the
 * ones refused, with what to write instead), partition columns and the
 * directory key the sink gives each row, partition values as the Delta
 * protocol serialises them, and the check of the query's columns against an
 * existing table.
 */
import type { Batch, Field, SinkContext, SqlType } from "../../core/plugin-api/index.ts";
import { compileTimePattern } from "../connector-filesystem/paths.ts";
import { tableColumnKind, type TableColumnKind } from "../shared/lakehouse/table-sink.ts";

const DELTA_TYPES: Record<TableColumnKind, string> = {
  boolean: "boolean",
  int: "integer",
  long: "long",
  float: "float",
  double: "double",
  string: "string",
  timestamp: "timestamp",
  binary: "binary",
};

/** The Delta type of a column, or an Error saying what to write instead. */
export const deltaType = (f: Field): string => DELTA_TYPES[tableColumnKind(f, "Delta Lake")];

export function deltaSchemaString(fields: Field[], timeColumns: string[]): string {
  const out = fields.map((f) => ({ name: f.name, type: deltaType(f), nullable: f.nullable, metadata: {} }));
  for (const name of timeColumns) out.push({ name, type: "string", nullable: true, metadata: {} });
  return JSON.stringify({ type: "struct", fields: out });
}

const PARTITION_KINDS = new Set<SqlType["kind"]>(["boolean", "int", "float", "string", "timestamp"]);

/** Partition columns from `partitioning.time_pattern` (each segment `name=<strftime>`) and `partitioning.fields`. */
export interface DeltaPartitioning {
  time: { name: string; pattern: string }[];
  fields: string[];
}

export function deltaPartitioning(timePattern: string | undefined, fieldNames: string[], fields: Field[]): DeltaPartitioning {
  const time: { name: string; pattern: string }[] = [];
  if (timePattern) {
    for (const seg of timePattern.split("/")) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.+)$/.exec(seg);
      if (!m) {
        throw new Error(
          `option 'partitioning.time_pattern': segment '${seg}' of '${timePattern}' has no column name; a Delta table partitions by columns, so write every segment as name=pattern, e.g. 'dt=%Y-%m-%d/hour=%H'`,
        );
      }
      if (fields.some((f) => f.name.toLowerCase() === m[1]!.toLowerCase())) {
        throw new Error(`option 'partitioning.time_pattern': '${m[1]}' is already a column of the table; name the time partition column differently`);
      }
      compileTimePattern(m[2]!);
      time.push({ name: m[1]!, pattern: m[2]! });
    }
  }
  const out: string[] = [];
  for (const name of fieldNames) {
    const f = fields.find((c) => c.name === name) ?? fields.find((c) => c.name.toLowerCase() === name.toLowerCase());
    if (!f) throw new Error(`option 'partitioning.fields' names column '${name}', which the table does not have; columns: ${fields.map((c) => c.name).join(", ")}`);
    if (!PARTITION_KINDS.has(f.type.kind) || (f.type.kind === "int" && f.type.unsigned)) {
      throw new Error(`option 'partitioning.fields': column '${f.name}' has a type a Delta partition value cannot hold; partition by a BOOLEAN, signed integer, FLOAT/DOUBLE, TEXT or TIMESTAMP column`);
    }
    out.push(f.name);
  }
  return { time, fields: out };
}

export const partitionColumns = (p: DeltaPartitioning): string[] => [...p.time.map((t) => t.name), ...p.fields];

const NULL_DIR = "__HIVE_DEFAULT_PARTITION__";
const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** A value as the Delta protocol writes it in `partitionValues`. */
export function deltaPartitionValue(type: SqlType, v: unknown): string | null {
  if (v === null || v === undefined) return null;
  if (type.kind === "timestamp") {
    const us = Number(v);
    const d = new Date(Math.floor(us / 1000));
    const frac = pad(((us % 1_000_000) + 1_000_000) % 1_000_000, 6);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${frac}`;
  }
  return String(v);
}

const dirValue = (v: string | null) => (v === null ? NULL_DIR : encodeURIComponent(v));

/** The sink's partitioner: the directory `col=value/...` of a row (values URI-encoded, so the key decodes back). */
export function deltaPartitioner(p: DeltaPartitioning) {
  return (ctx: SinkContext<unknown>) => {
    if (p.time.length === 0 && p.fields.length === 0) return null;
    const time = p.time.map((t) => ({ name: t.name, fn: compileTimePattern(t.pattern) }));
    const cols = p.fields.map((name) => {
      const idx = ctx.fields.findIndex((f) => f.name === name);
      return { name, idx, type: ctx.fields[idx]!.type };
    });
    return (batch: Batch, i: number): string => {
      const parts: string[] = [];
      for (const t of time) parts.push(`${t.name}=${dirValue(t.fn(batch.times[i]!))}`);
      for (const c of cols) parts.push(`${c.name}=${dirValue(deltaPartitionValue(c.type, batch.rows[i]![c.idx]))}`);
      return parts.join("/");
    };
  };
}

/** The partition values a directory key stands for. */
export function partitionValuesOf(key: string): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (!key) return out;
  for (const seg of key.split("/")) {
    const at = seg.indexOf("=");
    const raw = seg.slice(at + 1);
    out[seg.slice(0, at)] = raw === NULL_DIR ? null : decodeURIComponent(raw);
  }
  return out;
}

/** A relative file path as a Delta `add.path`: a relative URI, so each segment is percent-encoded. */
export const deltaPath = (rel: string) => rel.split("/").map((s) => encodeURIComponent(s)).join("/");

interface DeltaField {
  name: string;
  type: unknown;
  nullable: boolean;
}

/** Checks the query's columns against an existing table's schema; throws naming the column and what to write. */
export function checkAgainstTable(where: string, schemaString: string, tablePartitions: string[], wanted: string, wantedPartitions: string[]): void {
  const have = (JSON.parse(schemaString) as { fields: DeltaField[] }).fields;
  const want = (JSON.parse(wanted) as { fields: DeltaField[] }).fields;
  const fmt = (t: unknown) => (typeof t === "string" ? t : JSON.stringify(t));
  for (const w of want) {
    const h = have.find((f) => f.name === w.name);
    if (!h) {
      throw new Error(
        `the Delta table at ${where} has no column '${w.name}' (its columns: ${have.map((f) => `${f.name} ${fmt(f.type)}`).join(", ")}); ` +
          `drop the column from the table declaration, or write to a new 'path'`,
      );
    }
    if (fmt(h.type) !== fmt(w.type)) {
      throw new Error(`column '${w.name}' is ${fmt(w.type)} in the query but ${fmt(h.type)} in the Delta table at ${where}; CAST it to the table's type and declare it so`);
    }
  }
  for (const h of have) {
    if (!want.some((w) => w.name === h.name) && !h.nullable) {
      throw new Error(`the Delta table at ${where} has a NOT NULL column '${h.name}' that the query does not write; add it to the table declaration`);
    }
  }
  for (const w of want) {
    if (w.nullable && have.find((f) => f.name === w.name)?.nullable === false) {
      throw new Error(`column '${w.name}' is NOT NULL in the Delta table at ${where} but nullable in the query; declare it NOT NULL (and filter out NULLs)`);
    }
  }
  if (tablePartitions.join(",") !== wantedPartitions.join(",")) {
    throw new Error(
      `the Delta table at ${where} is partitioned by (${tablePartitions.join(", ") || "nothing"}) but the options give (${wantedPartitions.join(", ") || "nothing"}); ` +
        `set 'partitioning.fields' / 'partitioning.time_pattern' to match the table`,
    );
  }
}
