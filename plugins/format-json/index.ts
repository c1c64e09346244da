/**
 * `json`: one JSON object per record, keyed by column name. With
 * `unstructured = true` the whole record text goes into the `value` column.
 */
import { defineFormat, definePlugin, opt, type Row } from "../../core/plugin-api/index.ts";
import { compileObjectEncoder, compileRowDecoder, parseObject, timestampFormatOption, unstructuredColumn, type TimestampFormat } from "./codec.ts";

const decoder = new TextDecoder();

export const json = defineFormat({
  name: "json",
  description: "JSON objects, one per record",
  options: {
    timestamp_format: timestampFormatOption,
    unstructured: opt.boolean({ default: false, description: "Keep each record's text whole in a TEXT/JSON column `value`" }),
  },
  deserializer({ options, fields }) {
    const tsFormat = (options.timestamp_format ?? "rfc3339") as TimestampFormat;
    if (options.unstructured) {
      const at = unstructuredColumn(fields, "json");
      const width = fields.length;
      return {
        deserialize(data) {
          const row: Row = new Array(width).fill(null);
          row[at] = typeof data === "string" ? data : decoder.decode(data);
          return row;
        },
      };
    }
    const toRow = compileRowDecoder(fields, tsFormat);
    return { deserialize: (data) => toRow(parseObject(data)) };
  },
  serializer({ options, fields }) {
    const tsFormat = (options.timestamp_format ?? "rfc3339") as TimestampFormat;
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
    // Updating streams are written as their rows (an append-only view); use debezium_json for the changes.
    return { serialize: (row) => JSON.stringify(toObject(row)) };
  },
});

export default definePlugin({ name: "format-json", version: "0.1.0", formats: [json] });
