/**
 * `debezium_json`: change events as Debezium writes them, {"before", "after",
 * "op"}, optionally wrapped by Kafka Connect as {"schema", "payload"}.
 *
 * Reading gives an updating stream: `c` (create) and `r` (snapshot read) insert
 * `after`; `u` updates to `after`, retracting `before`; `d` deletes `before`;
 * a record without a value (the tombstone Kafka keeps after a delete) is
 * skipped. Numbers in TIMESTAMP columns follow the field's Debezium type when
 * the schema is included (io.debezium.time.Timestamp ms, MicroTimestamp µs,
 * NanoTimestamp ns, Date days, ZonedTimestamp text), else `timestamp_format`.
 * Connect's Decimal (base64 unscaled bytes with a scale) is read as a number.
 *
 * Writing: insert → c (before null), update → u (before = the previous row),
 * delete → d (after null); `include_schema = 'true'` wraps each event with a
 * Connect schema (timestamps as MicroTimestamp, so nothing is rounded).
 */
import { defineFormat, definePlugin, opt, ROW_CHANGE, RowOp, type ChangeRow, type Field, type Row, type SqlType } from "../../core/plugin-api/index.ts";
import { compileObjectEncoder, compileRowDecoder, describeValue, parseObject } from "../format-json/codec.ts";
import { decodeTwosComplement } from "../shared/decimal.ts";

type TimestampUnit = "rfc3339" | "unix_millis" | "unix_micros" | "unix_nanos";

/** Milliseconds per unit of a Debezium temporal type whose values are numbers. */
const MILLIS_PER: Record<string, number> = {
  "io.debezium.time.Timestamp": 1,
  "org.apache.kafka.connect.data.Timestamp": 1,
  "io.debezium.time.MicroTimestamp": 1e-3,
  "io.debezium.time.NanoTimestamp": 1e-6,
  "io.debezium.time.Date": 86_400_000,
  "org.apache.kafka.connect.data.Date": 86_400_000,
};
const OPTION_MILLIS_PER: Record<TimestampUnit, number> = { rfc3339: 1, unix_millis: 1, unix_micros: 1e-3, unix_nanos: 1e-6 };

interface ConnectField {
  field: string;
  type?: string;
  name?: string;
  parameters?: Record<string, string>;
  fields?: ConnectField[];
}

/** Per column, how a payload value becomes what the JSON row decoder reads (ms numbers, text). */
type Normalize = (v: unknown) => unknown;

/** Connect's Decimal: the unscaled value as big-endian two's complement bytes in base64. */
function decodeConnectDecimal(scale: number): Normalize {
  return (v) => (typeof v === "string" ? decodeTwosComplement(Buffer.from(v, "base64"), scale) : v);
}

export const debeziumJson = defineFormat({
  name: "debezium_json",
  description: "Debezium change events {before, after, op}, with or without the Kafka Connect schema envelope",
  options: {
    timestamp_format: opt.enum(["rfc3339", "unix_millis", "unix_micros", "unix_nanos"] as const, {
      default: "rfc3339",
      description:
        "TIMESTAMP values when the event carries no schema: RFC 3339 text (numbers then read as ms), or numbers in ms, µs or ns; also how they are written without include_schema",
    }),
    include_schema: opt.boolean({ default: false, description: "Write each event as {\"schema\", \"payload\"} with a Kafka Connect schema (reading accepts both)" }),
  },
  updating: true,
  serializer({ options, fields }) {
    const unit = (options.timestamp_format ?? "rfc3339") as TimestampUnit;
    const toObject = imageEncoder(fields, options.include_schema ? "unix_micros" : unit);
    const envelope = (before: Row | null, after: Row | null, op: string) => ({ before: before && toObject(before), after: after && toObject(after), op });
    const wrap = options.include_schema
      ? (payload: unknown) => JSON.stringify({ schema: envelopeSchema(fields), payload })
      : (payload: unknown) => JSON.stringify(payload);
    return {
      serialize(row, op, before) {
        if (op === RowOp.Delete) return wrap(envelope(before ?? row, null, "d"));
        if (op === RowOp.Update) return wrap(envelope(before ?? null, row, "u"));
        return wrap(envelope(null, row, "c"));
      },
    };
  },
  deserializer({ options, fields }) {
    const toRow = compileRowDecoder(fields, "rfc3339");
    const optionScale = OPTION_MILLIS_PER[(options.timestamp_format ?? "rfc3339") as TimestampUnit];
    const timestampColumns = fields.flatMap((f, i) => (f.type.kind === "timestamp" ? [i] : []));
    const byOption: (Normalize | null)[] = fields.map((f) => (f.type.kind === "timestamp" && optionScale !== 1 ? scaleToMillis(optionScale) : null));
    // Events repeat the same schema: its per-column normalisers are built once per distinct field list.
    const bySchema = new Map<string, (Normalize | null)[]>();
    const normalizersFor = (schema: unknown): (Normalize | null)[] => {
      const image = (schema as { fields?: ConnectField[] } | undefined)?.fields?.find((f) => f.field === "after" || f.field === "before");
      if (!image?.fields) return byOption;
      const key = image.fields.map((f) => `${f.field}:${f.name ?? ""}:${f.parameters?.scale ?? ""}`).join(",");
      let found = bySchema.get(key);
      if (!found) {
        found = fields.map((f, i) => {
          const spec = image.fields!.find((s) => s.field === f.name);
          if (!spec) return byOption[i]!;
          if (spec.name === "org.apache.kafka.connect.data.Decimal") return decodeConnectDecimal(Number(spec.parameters?.scale ?? 0));
          if (f.type.kind === "timestamp" && spec.name && spec.name in MILLIS_PER) return scaleToMillis(MILLIS_PER[spec.name]!);
          return timestampColumns.includes(i) ? null : byOption[i]!;
        });
        bySchema.set(key, found);
      }
      return found;
    };
    const image = (value: unknown, normalize: (Normalize | null)[], side: string, op: unknown): Row => {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new Error(`expected a Debezium event with an object in \`${side}\` (op ${describeValue(op)}), got ${describeValue(value)}`);
      }
      let obj = value as Record<string, unknown>;
      if (normalize.some(Boolean)) {
        obj = { ...obj };
        for (let i = 0; i < fields.length; i++) {
          const n = normalize[i];
          const name = fields[i]!.name;
          if (n && obj[name] !== null && obj[name] !== undefined) obj[name] = n(obj[name]);
        }
      }
      return toRow(obj);
    };
    return {
      skipsEmptyRecords: true,
      deserialize(data) {
        let event = parseObject(data);
        let normalize = byOption;
        // Kafka Connect with schemas enabled wraps the event in {"schema", "payload"}.
        if ("payload" in event && !("op" in event)) {
          normalize = normalizersFor(event.schema);
          if (event.payload === null) return null; // a tombstone written with its schema
          if (typeof event.payload !== "object" || Array.isArray(event.payload)) throw new Error(`expected an object in \`payload\`, got ${describeValue(event.payload)}`);
          event = event.payload as Record<string, unknown>;
        }
        const op = event.op;
        switch (op) {
          case "c":
          case "r":
            return image(event.after, normalize, "after", op);
          case "u": {
            const row: ChangeRow = image(event.after, normalize, "after", op);
            const before = event.before === null || event.before === undefined ? null : image(event.before, normalize, "before", op);
            row[ROW_CHANGE] = { op: RowOp.Update, before };
            return row;
          }
          case "d": {
            const row: ChangeRow = image(event.before, normalize, "before", op);
            row[ROW_CHANGE] = { op: RowOp.Delete, before: null };
            return row;
          }
          default:
            throw new Error(`unknown Debezium op ${describeValue(op)}; expected c, r, u or d`);
        }
      },
    };
  },
});

function scaleToMillis(millisPerUnit: number): Normalize {
  return (v) => (typeof v === "number" ? v * millisPerUnit : v);
}

/** Rows as `before`/`after` objects; TIMESTAMP columns in the chosen unit. */
function imageEncoder(fields: Field[], unit: TimestampUnit): (row: Row) => Record<string, unknown> {
  const base = compileObjectEncoder(fields, unit === "unix_millis" ? "unix_millis" : "rfc3339");
  if (unit === "rfc3339" || unit === "unix_millis") return base;
  const columns = fields.flatMap((f, i) => (f.type.kind === "timestamp" ? [[i, f.name] as const] : []));
  const scale = unit === "unix_micros" ? 1 : 1000;
  return (row) => {
    const out = base(row);
    for (const [i, name] of columns) {
      const v = row[i];
      out[name] = v === null || v === undefined ? null : (v as number) * scale;
    }
    return out;
  };
}

/** The Kafka Connect schema of a value of `type`. */
function connectSchema(type: SqlType, optional: boolean, field?: string): Record<string, unknown> {
  const base = (t: string, name?: string) => ({ type: t, optional, ...(name ? { name } : {}), ...(field !== undefined ? { field } : {}) });
  switch (type.kind) {
    case "boolean":
      return base("boolean");
    case "int":
      return base(type.bits === 32 && !type.unsigned ? "int32" : "int64");
    case "float":
      return base(type.bits === 32 ? "float" : "double");
    case "decimal":
      return base("double");
    case "string":
      return base("string");
    case "json":
      return base("string", "io.debezium.data.Json");
    case "timestamp":
      return base("int64", "io.debezium.time.MicroTimestamp");
    case "interval":
      return base("int64", "io.debezium.time.MicroDuration");
    case "bytes":
      return base("bytes");
    case "array":
      return { ...base("array"), items: connectSchema(type.element, true) };
    case "struct":
      return { ...base("struct"), fields: type.fields.map((f) => connectSchema(f.type, f.nullable, f.name)) };
    case "map":
      return { ...base("map"), keys: connectSchema(type.key, false), values: connectSchema(type.value, true) };
  }
}

const schemas = new WeakMap<Field[], Record<string, unknown>>();

/** The envelope schema Debezium writes: before and after as optional structs of the row, op as text. */
function envelopeSchema(fields: Field[]): Record<string, unknown> {
  let schema = schemas.get(fields);
  if (!schema) {
    const value = { type: "struct", fields: fields.map((f) => connectSchema(f.type, f.nullable, f.name)), optional: true, name: "runnel.Value" };
    schema = {
      type: "struct",
      fields: [{ ...value, field: "before" }, { ...value, field: "after" }, { type: "string", optional: false, field: "op" }],
      optional: false,
      name: "runnel.Envelope",
    };
    schemas.set(fields, schema);
  }
  return schema;
}

export default definePlugin({ name: "format-debezium-json", version: "0.2.0", formats: [debeziumJson] });
