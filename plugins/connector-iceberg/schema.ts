/**
 * The Iceberg side of a Runnel table: column types (and the ones refused,
 * with what to write instead), the schema with field ids, the partition spec
 * parsed from `'iceberg.partitioning'` ('day(time), bucket(16, auction), channel'),
 * and the check of the query against an existing table's schema and spec.
 */
import type { Field } from "../../core/plugin-api/index.ts";
import { tableColumnKind, type TableColumnKind } from "../shared/lakehouse/table-sink.ts";
import type { PartitionField, TransformName } from "./transforms.ts";

const ICEBERG_TYPES: Record<TableColumnKind, string> = {
  boolean: "boolean",
  int: "int",
  long: "long",
  float: "float",
  double: "double",
  string: "string",
  timestamp: "timestamptz",
  binary: "binary",
};

/** The Iceberg primitive type of a column, or an Error saying what to write instead. */
export const icebergType = (f: Field): string => ICEBERG_TYPES[tableColumnKind(f, "Iceberg")];

export interface IcebergSchema {
  type: "struct";
  "schema-id": number;
  fields: { id: number; name: string; required: boolean; type: string }[];
}

export function icebergSchema(fields: Field[]): IcebergSchema {
  return { type: "struct", "schema-id": 0, fields: fields.map((f, i) => ({ id: i + 1, name: f.name, required: !f.nullable, type: icebergType(f) })) };
}

/** Iceberg's name mapping (table property schema.name-mapping.default), for readers of files without field ids. */
export const nameMapping = (s: IcebergSchema) => JSON.stringify(s.fields.map((f) => ({ "field-id": f.id, names: [f.name] })));

const TRANSFORM = /^\s*(?:(identity|day|days|hour|hours)\s*\(\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)|(bucket)\s*\(\s*(\d+)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)|([A-Za-z_][A-Za-z0-9_]*))\s*$/i;

/** Parses the partitioning option against the table's schema (column ids from the schema). */
export function parsePartitioning(text: string | undefined, fields: Field[], schema: IcebergSchema): PartitionField[] {
  if (!text || !text.trim()) return [];
  const out: PartitionField[] = [];
  for (const part of text.split(/,(?![^(]*\))/)) {
    const m = TRANSFORM.exec(part);
    if (!m) {
      throw new Error(
        `option 'iceberg.partitioning': cannot read '${part.trim()}'; write a comma-separated list of column, identity(column), day(column), hour(column) or bucket(N, column)`,
      );
    }
    const transform = (m[1] ? m[1].toLowerCase().replace(/s$/, "") : m[3] ? "bucket" : "identity") as TransformName;
    const col = m[2] ?? m[5] ?? m[6]!;
    const idx = fields.findIndex((f) => f.name === col) >= 0 ? fields.findIndex((f) => f.name === col) : fields.findIndex((f) => f.name.toLowerCase() === col.toLowerCase());
    if (idx < 0) throw new Error(`option 'iceberg.partitioning' names column '${col}', which the table does not have; columns: ${fields.map((f) => f.name).join(", ")}`);
    const source = fields[idx]!;
    const kind = source.type.kind;
    if ((transform === "day" || transform === "hour") && kind !== "timestamp") {
      throw new Error(`option 'iceberg.partitioning': ${transform}(${source.name}) needs a TIMESTAMP column, but '${source.name}' is ${kind}; partition by identity(${source.name}) or bucket(N, ${source.name})`);
    }
    if (transform === "bucket" && !["int", "string", "json", "timestamp", "bytes"].includes(kind)) {
      throw new Error(`option 'iceberg.partitioning': bucket(N, ${source.name}) needs an integer, text, timestamp or bytes column, but '${source.name}' is ${kind}`);
    }
    if (transform === "identity" && !["boolean", "int", "float", "string", "timestamp"].includes(kind)) {
      throw new Error(`option 'iceberg.partitioning': '${source.name}' (${kind}) cannot be an identity partition; use a BOOLEAN, integer, FLOAT/DOUBLE, TEXT or TIMESTAMP column`);
    }
    const buckets = transform === "bucket" ? Number(m[4]) : undefined;
    if (buckets !== undefined && !(buckets >= 1 && buckets <= 2 ** 31 - 1)) throw new Error(`option 'iceberg.partitioning': bucket(${m[4]}, ...) needs N between 1 and 2147483647`);
    const name = transform === "identity" ? source.name : `${source.name}_${transform}${transform === "bucket" ? `_${buckets}` : ""}`;
    out.push({ name, sourceId: schema.fields[idx]!.id, fieldId: 1000 + out.length, source, transform, buckets });
  }
  return out;
}

export const specTransform = (p: PartitionField) => (p.transform === "bucket" ? `bucket[${p.buckets}]` : p.transform);

export function partitionSpec(fields: PartitionField[]) {
  return { "spec-id": 0, fields: fields.map((p) => ({ "source-id": p.sourceId, "field-id": p.fieldId, name: p.name, transform: specTransform(p) })) };
}

export interface TableSchemaView {
  schema: { fields: { id: number; name: string; required: boolean; type: unknown }[] };
  spec: { fields: { "source-id": number; transform: string; name: string }[] };
}

/** Checks the query's columns and partitioning against an existing table; throws naming the column and what to write. */
export function checkAgainstTable(where: string, table: TableSchemaView, wanted: IcebergSchema, spec: PartitionField[]): Map<string, number> {
  const ids = new Map<string, number>();
  const fmt = (t: unknown) => (typeof t === "string" ? t : JSON.stringify(t));
  for (const w of wanted.fields) {
    const h = table.schema.fields.find((f) => f.name === w.name);
    if (!h) {
      throw new Error(
        `the Iceberg table ${where} has no column '${w.name}' (its columns: ${table.schema.fields.map((f) => `${f.name} ${fmt(f.type)}`).join(", ")}); drop it from the table declaration, or write to a new table`,
      );
    }
    if (fmt(h.type) !== w.type) throw new Error(`column '${w.name}' is ${w.type} in the query but ${fmt(h.type)} in the Iceberg table ${where}; CAST it to the table's type and declare it so`);
    if (h.required && !w.required) throw new Error(`column '${w.name}' is required in the Iceberg table ${where} but nullable in the query; declare it NOT NULL`);
    ids.set(w.name, h.id);
  }
  for (const h of table.schema.fields) {
    if (h.required && !wanted.fields.some((w) => w.name === h.name)) {
      throw new Error(`the Iceberg table ${where} has a required column '${h.name}' that the query does not write; add it to the table declaration`);
    }
  }
  const nameOf = (id: number) => table.schema.fields.find((f) => f.id === id)?.name;
  const have = table.spec.fields.map((f) => `${f.transform}(${nameOf(f["source-id"])})`).join(", ");
  const want = spec.map((p) => `${specTransform(p)}(${p.source.name})`).join(", ");
  if (have !== want) {
    throw new Error(`the Iceberg table ${where} is partitioned by (${have || "nothing"}) but 'iceberg.partitioning' gives (${want || "nothing"}); set 'iceberg.partitioning' to match the table`);
  }
  return ids;
}
