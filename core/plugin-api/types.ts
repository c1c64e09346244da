/**
 * Data types and record batches as plugins see them.
 *
 * Value representation (the contract between every plugin and the engine):
 * - BOOLEAN → boolean; INT/BIGINT (signed or unsigned), FLOAT/DOUBLE, DECIMAL → number
 * - TEXT/VARCHAR/STRING → string; JSON → string holding JSON text
 * - TIMESTAMP → number of microseconds since the Unix epoch (UTC)
 * - INTERVAL → number of microseconds
 * - BYTEA → Uint8Array
 * - arrays → JS arrays; structs → plain objects keyed by field name
 * - maps → arrays of [key, value] pairs, in key insertion order, keys unique and
 *   never NULL (DataFusion's MAP: a list of entries; a pair list keeps non-text
 *   keys and travels through MessagePack and JSON unchanged)
 * - SQL NULL → null
 */
export type SqlType =
  | { kind: "boolean" }
  | { kind: "int"; bits: 32 | 64; unsigned?: boolean }
  | { kind: "float"; bits: 32 | 64 }
  | { kind: "decimal"; precision: number; scale: number }
  | { kind: "string" }
  | { kind: "json" }
  | { kind: "timestamp" }
  | { kind: "interval" }
  | { kind: "bytes" }
  | { kind: "array"; element: SqlType }
  | { kind: "struct"; fields: Field[] }
  | { kind: "map"; key: SqlType; value: SqlType };

export interface Field {
  name: string;
  type: SqlType;
  nullable: boolean;
}

export interface Schema {
  fields: Field[];
}

/** A record: values positioned like the fields of the schema it travels under. */
export type Row = unknown[];

/** How a row of an updating stream changes the result (Debezium's `op`). */
export const enum RowOp {
  Insert = 0,
  Update = 1,
  Delete = 2,
}

/**
 * Records travel in batches, never one by one. `times[i]` is the event time of
 * `rows[i]` in microseconds. Updating streams (GROUP BY without a window) also
 * carry `ops` and, for updates and deletes, the previous value in `before`.
 */
export interface Batch {
  rows: Row[];
  times: number[];
  ops?: RowOp[];
  before?: (Row | null)[];
}

export const t = {
  boolean: (): SqlType => ({ kind: "boolean" }),
  int: (): SqlType => ({ kind: "int", bits: 32 }),
  bigint: (): SqlType => ({ kind: "int", bits: 64 }),
  ubigint: (): SqlType => ({ kind: "int", bits: 64, unsigned: true }),
  float: (): SqlType => ({ kind: "float", bits: 32 }),
  double: (): SqlType => ({ kind: "float", bits: 64 }),
  string: (): SqlType => ({ kind: "string" }),
  json: (): SqlType => ({ kind: "json" }),
  timestamp: (): SqlType => ({ kind: "timestamp" }),
  interval: (): SqlType => ({ kind: "interval" }),
  bytes: (): SqlType => ({ kind: "bytes" }),
  array: (element: SqlType): SqlType => ({ kind: "array", element }),
  struct: (fields: Field[]): SqlType => ({ kind: "struct", fields }),
  map: (key: SqlType, value: SqlType): SqlType => ({ kind: "map", key, value }),
};

export function field(name: string, type: SqlType, nullable = true): Field {
  return { name, type, nullable };
}

/** SQL spelling of a type, for messages and catalogs. */
export function typeName(type: SqlType): string {
  switch (type.kind) {
    case "boolean":
      return "BOOLEAN";
    case "int":
      return (type.bits === 32 ? "INT" : "BIGINT") + (type.unsigned ? " UNSIGNED" : "");
    case "float":
      return type.bits === 32 ? "FLOAT" : "DOUBLE";
    case "decimal":
      return `DECIMAL(${type.precision},${type.scale})`;
    case "string":
      return "TEXT";
    case "json":
      return "JSON";
    case "timestamp":
      return "TIMESTAMP";
    case "interval":
      return "INTERVAL";
    case "bytes":
      return "BYTEA";
    case "array":
      return `${typeName(type.element)}[]`;
    case "struct":
      return `STRUCT<${type.fields.map((f) => `${f.name} ${typeName(f.type)}`).join(", ")}>`;
    case "map":
      return `MAP<${typeName(type.key)}, ${typeName(type.value)}>`;
  }
}
