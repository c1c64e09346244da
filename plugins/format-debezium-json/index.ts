/**
 * `debezium_json`: changes as Debezium envelopes {"before", "after", "op"}, for
 * updating streams: insert → c (before null), update → u (before = the previous
 * row), delete → d (after null, before = the deleted row).
 */
import { defineFormat, definePlugin, RowOp } from "../../core/plugin-api/index.ts";
import {
  compileObjectEncoder,
  compileRowDecoder,
  describeValue,
  parseObject,
  timestampFormatOption,
  type TimestampFormat,
} from "../format-json/codec.ts";

export const debeziumJson = defineFormat({
  name: "debezium_json",
  description: "Debezium change envelopes {before, after, op}",
  options: { timestamp_format: timestampFormatOption },
  updating: true,
  serializer({ options, fields }) {
    const toObject = compileObjectEncoder(fields, (options.timestamp_format ?? "rfc3339") as TimestampFormat);
    return {
      serialize(row, op, before) {
        if (op === RowOp.Delete) {
          return JSON.stringify({ before: toObject(before ?? row), after: null, op: "d" });
        }
        if (op === RowOp.Update) {
          return JSON.stringify({ before: before ? toObject(before) : null, after: toObject(row), op: "u" });
        }
        return JSON.stringify({ before: null, after: toObject(row), op: "c" });
      },
    };
  },
  /** Reads the row an envelope leaves: `after`, or `before` for a delete (the op itself is not kept). */
  deserializer({ options, fields }) {
    const toRow = compileRowDecoder(fields, (options.timestamp_format ?? "rfc3339") as TimestampFormat);
    return {
      deserialize(data) {
        let env = parseObject(data);
        // Kafka Connect with schemas wraps the envelope in {"schema", "payload"}.
        if (!("op" in env) && typeof env.payload === "object" && env.payload !== null) env = env.payload as Record<string, unknown>;
        const op = env.op;
        const image = op === "d" ? env.before : env.after;
        if (typeof image !== "object" || image === null || Array.isArray(image)) {
          const side = op === "d" ? "before" : "after";
          throw new Error(`expected a Debezium envelope with an object in \`${side}\` (op ${describeValue(op)}), got ${describeValue(image)}`);
        }
        return toRow(image as Record<string, unknown>);
      },
    };
  },
});

export default definePlugin({ name: "format-debezium-json", version: "0.1.0", formats: [debeziumJson] });
