/**
 * What the `json` format adds around the row's object: decimal encodings
 * (Arroyo's `decimal_encoding`), the Kafka Connect envelope
 * (`include_schema`), and the JSON Schema a sink registers with a schema registry.
 */
import { opt, type Field, type SqlType } from "../../core/plugin-api/index.ts";
import { decimalText, decodeTwosComplement, encodeTwosComplement } from "../shared/decimal.ts";
import type { TimestampFormat } from "./codec.ts";

export type DecimalEncoding = "number" | "string" | "bytes";

export const decimalEncodingOption = opt.enum(["number", "string", "bytes"] as const, {
  default: "number",
  description:
    "DECIMAL columns as JSON numbers, as full-precision text with the column's scale, or as base64 of the unscaled two's complement bytes (Kafka Connect's Decimal); read the same way",
});

type Decimal = Extract<SqlType, { kind: "decimal" }>;

/** Top-level DECIMAL columns and their scales (nested ones stay numbers). */
function decimalColumns(fields: Field[]): { name: string; at: number; scale: number }[] {
  return fields.flatMap((f, at) => (f.type.kind === "decimal" ? [{ name: f.name, at, scale: (f.type as Decimal).scale }] : []));
}

/** Rewrites the DECIMAL values of an object being written, or null when numbers stay numbers. */
export function decimalWriter(fields: Field[], encoding: DecimalEncoding): ((obj: Record<string, unknown>) => void) | null {
  const columns = decimalColumns(fields);
  if (encoding === "number" || columns.length === 0) return null;
  const encode = encoding === "string" ? decimalText : (v: number, scale: number) => Buffer.from(encodeTwosComplement(v, scale)).toString("base64");
  return (obj) => {
    for (const c of columns) {
      const v = obj[c.name];
      if (typeof v === "number") obj[c.name] = encode(v, c.scale);
    }
  };
}

/** Turns base64 decimals of a parsed object back into numbers (number and string encodings read as they are). */
export function decimalReader(fields: Field[], encoding: DecimalEncoding): ((obj: Record<string, unknown>) => void) | null {
  const columns = decimalColumns(fields);
  if (encoding !== "bytes" || columns.length === 0) return null;
  return (obj) => {
    for (const c of columns) {
      const v = obj[c.name];
      if (typeof v === "string") obj[c.name] = decodeTwosComplement(Buffer.from(v, "base64"), c.scale);
    }
  };
}

/** The Kafka Connect schema of a column, as the values are written. */
function connectType(type: SqlType, optional: boolean, ts: TimestampFormat, decimals: DecimalEncoding, field?: string): Record<string, unknown> {
  const base = (t: string, extra: Record<string, unknown> = {}) => ({ type: t, optional, ...extra, ...(field !== undefined ? { field } : {}) });
  switch (type.kind) {
    case "boolean":
      return base("boolean");
    case "int":
      return base(type.bits === 32 && !type.unsigned ? "int32" : "int64");
    case "float":
      return base(type.bits === 32 ? "float" : "double");
    case "decimal":
      if (decimals === "bytes") return base("bytes", { name: "org.apache.kafka.connect.data.Decimal", version: 1, parameters: { scale: String(type.scale) } });
      return base(decimals === "string" ? "string" : "double");
    case "string":
    case "json":
      return base("string");
    case "timestamp":
      return ts === "unix_millis" ? base("int64", { name: "org.apache.kafka.connect.data.Timestamp", version: 1 }) : base("string");
    case "interval":
      return base("int64");
    case "bytes":
      return base("bytes");
    case "array":
      return base("array", { items: connectType(type.element, true, ts, decimals) });
    case "struct":
      return base("struct", { fields: type.fields.map((f) => connectType(f.type, f.nullable, ts, decimals, f.name)) });
    case "map":
      // Written as a JSON object, whose keys are text.
      return base("map", { keys: connectType({ kind: "string" }, false, ts, decimals), values: connectType(type.value, true, ts, decimals) });
  }
}

/** The {"schema", "payload"} envelope's schema for rows of `fields` (Arroyo's `include_schema`). */
export function connectEnvelopeSchema(fields: Field[], name: string, ts: TimestampFormat, decimals: DecimalEncoding): Record<string, unknown> {
  return { type: "struct", name, optional: false, fields: fields.map((f) => connectType(f.type, f.nullable, ts, decimals, f.name)) };
}

function jsonSchemaType(type: SqlType, ts: TimestampFormat, decimals: DecimalEncoding): Record<string, unknown> {
  switch (type.kind) {
    case "boolean":
      return { type: "boolean" };
    case "int":
      return { type: "integer" };
    case "float":
      return { type: "number" };
    case "decimal":
      return decimals === "number" ? { type: "number" } : { type: "string", ...(decimals === "bytes" ? { contentEncoding: "base64" } : {}) };
    case "string":
      return { type: "string" };
    case "json":
      return {};
    case "timestamp":
      return ts === "unix_millis" ? { type: "integer" } : { type: "string", format: "date-time" };
    case "interval":
      return { type: "integer" };
    case "bytes":
      return { type: "string", contentEncoding: "base64" };
    case "array":
      return { type: "array", items: jsonSchemaType(type.element, ts, decimals) };
    case "struct":
      return objectSchema(type.fields, ts, decimals);
    case "map":
      return { type: "object", additionalProperties: jsonSchemaType(type.value, ts, decimals) };
  }
}

function objectSchema(fields: Field[], ts: TimestampFormat, decimals: DecimalEncoding): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const f of fields) {
    const t = jsonSchemaType(f.type, ts, decimals);
    properties[f.name] = f.nullable && t.type ? { ...t, type: [t.type, "null"] } : t;
  }
  return { type: "object", properties, required: fields.filter((f) => !f.nullable).map((f) => f.name) };
}

/** The JSON Schema (draft-07) a sink registers for its rows. */
export function rowJsonSchema(fields: Field[], title: string, ts: TimestampFormat, decimals: DecimalEncoding): Record<string, unknown> {
  return { $schema: "http://json-schema.org/draft-07/schema#", title, ...objectSchema(fields, ts, decimals) };
}
