/**
 * `json`: one JSON object per record, keyed by column name. With
 * `unstructured = true` the whole record text goes into the `value` column.
 * `include_schema` wraps each object in Kafka Connect's {"schema", "payload"}
 * envelope; `confluent_schema_registry` prefixes the schema registry wire
 * header (a sink registers a JSON Schema of its columns; a source skips the
 * header and reads fields by name, so any registered version reads);
 * `decimal_encoding` says how DECIMAL columns are written and read.
 */
import { defineFormat, definePlugin, opt, type Row } from "../../core/plugin-api/index.ts";
import {
  recordBytes,
  schemaRegistryOptions,
  validateRegistryOptions,
  sinkSchemaId,
  wireHeader,
  wireSchemaId,
} from "../shared/schema-registry.ts";
import { compileJsonScanner } from "./scan.ts";
import { bytesReaderFor, compileObjectEncoder, compileRowDecoder, compileValuesDecoder, describeValue, parseObject, timestampFormatOption, unstructuredColumn, utf8Text, type TimestampFormat } from "./codec.ts";
import { connectEnvelopeSchema, decimalEncodingOption, decimalReader, decimalWriter, rowJsonSchema, type DecimalEncoding } from "./envelopes.ts";

const encoder = new TextEncoder();

export const json = defineFormat({
  name: "json",
  description: "JSON objects, one per record",
  options: {
    timestamp_format: timestampFormatOption,
    unstructured: opt.boolean({ default: false, description: "Keep each record's text whole in a TEXT/JSON column `value`" }),
    decimal_encoding: decimalEncodingOption,
    include_schema: opt.boolean({ default: false, description: "Write each record as Kafka Connect's {\"schema\", \"payload\"} (and read records so wrapped)" }),
    ...schemaRegistryOptions,
  },
  validate({ options: o, table }) {
    if (o.include_schema && o.confluent_schema_registry) {
      throw new Error("format 'json': give at most one of include_schema and confluent_schema_registry (the schema travels in the record or in the registry)");
    }
    validateRegistryOptions(o, table, "json");
  },
  deserializer({ options, fields }) {
    const tsFormat = (options.timestamp_format ?? "rfc3339") as TimestampFormat;
    // With the registry, the header is checked and skipped: fields are read by name, whatever the version.
    const text = options.confluent_schema_registry
      ? (data: Uint8Array | string) => {
          const bytes = recordBytes(data);
          wireSchemaId(bytes);
          return utf8Text(bytes, 5, bytes.length);
        }
      : (data: Uint8Array | string) => data;
    if (options.unstructured) {
      const at = unstructuredColumn(fields, "json");
      const width = fields.length;
      const rowOf = (t: string) => {
        const row: Row = new Array(width).fill(null);
        row[at] = t;
        return row;
      };
      return {
        deserialize(data) {
          const t = text(data);
          return rowOf(typeof t === "string" ? t : utf8Text(t, 0, t.length));
        },
        deserializeRange: options.confluent_schema_registry ? undefined : (buf, start, end) => rowOf(utf8Text(buf, start, end)),
      };
    }
    const toRow = compileRowDecoder(fields, tsFormat);
    const decimals = decimalReader(fields, (options.decimal_encoding ?? "number") as DecimalEncoding);
    const unwrap = options.include_schema
      ? (obj: Record<string, unknown>) => {
          const payload = "schema" in obj && "payload" in obj ? obj.payload : obj;
          if (typeof payload !== "object" || payload === null || Array.isArray(payload)) throw new Error(`expected an object in \`payload\`, got ${describeValue(payload)}`);
          return payload as Record<string, unknown>;
        }
      : null;
    if (!decimals && !unwrap && !options.confluent_schema_registry) {
      const parsed = (buf: Uint8Array, start: number, end: number) => toRow(parseObject(utf8Text(buf, start, end)));
      // Flat records are read from their bytes without JSON.parse (scan.ts); anything else through it.
      const scan = compileJsonScanner(fields.map((f) => f.name), compileValuesDecoder(fields, tsFormat), parsed, fields.map((f) => bytesReaderFor(f.type))) ?? parsed;
      return { deserialize: (data) => (typeof data === "string" ? toRow(parseObject(data)) : scan(data, 0, data.length)), deserializeRange: scan };
    }
    const fromObject = (parsed: Record<string, unknown>) => {
      const obj = unwrap ? unwrap(parsed) : parsed;
      decimals?.(obj);
      return toRow(obj);
    };
    return {
      deserialize: (data) => fromObject(parseObject(text(data))),
      deserializeRange: options.confluent_schema_registry ? undefined : (buf, start, end) => fromObject(parseObject(utf8Text(buf, start, end))),
    };
  },
  serializer({ options, fields, table }) {
    const tsFormat = (options.timestamp_format ?? "rfc3339") as TimestampFormat;
    const decimalEncoding = (options.decimal_encoding ?? "number") as DecimalEncoding;
    if (options.unstructured) {
      const at = unstructuredColumn(fields, "json");
      return {
        serialize(row) {
          const v = row[at];
          return v === null || v === undefined ? "null" : String(v);
        },
      };
    }
    const toObject = compileObjectEncoder(fields, tsFormat);
    const decimals = decimalWriter(fields, decimalEncoding);
    const objectOf = decimals
      ? (row: Row) => {
          const obj = toObject(row);
          decimals(obj);
          return obj;
        }
      : toObject;
    // Updating streams are written as their rows (an append-only view); use debezium_json for the changes.
    if (options.include_schema) {
      const schema = connectEnvelopeSchema(fields, `runnel.${table?.name ?? "row"}`, tsFormat, decimalEncoding);
      return { serialize: (row) => JSON.stringify({ schema, payload: objectOf(row) }) };
    }
    if (!options.confluent_schema_registry) return { serialize: (row) => JSON.stringify(objectOf(row)) };
    let header: Uint8Array | null = null;
    return {
      async open() {
        const schema = JSON.stringify(rowJsonSchema(fields, table?.name ?? "row", tsFormat, decimalEncoding));
        const id = await sinkSchemaId(options, table, "json", { schema, schemaType: "JSON", references: [] });
        header = wireHeader(id);
      },
      serialize(row) {
        if (header === null) throw new Error("format 'json': the schema id is not known yet (the engine did not call the serializer's open)");
        const body = encoder.encode(JSON.stringify(objectOf(row)));
        const out = new Uint8Array(5 + body.length);
        out.set(header, 0);
        out.set(body, 5);
        return out;
      },
    };
  },
});

export default definePlugin({ name: "format-json", version: "0.2.0", formats: [json] });
