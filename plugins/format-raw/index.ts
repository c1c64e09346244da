/**
 * `raw_string` and `raw_bytes` (Arroyo's): each record whole in one column
 * `value`, TEXT (UTF-8) or BYTEA. Writing sends the column's value as the
 * record (NULL as an empty record).
 */
import { defineFormat, definePlugin, typeName, type Field, type Row } from "../../core/plugin-api/index.ts";
import { recordBytes } from "../shared/schema-registry.ts";

/** The position of the one column a raw format fills; throws naming what the table must declare. */
function valueColumn(fields: Field[], format: string, kind: "string" | "bytes"): number {
  const want = kind === "string" ? "TEXT" : "BYTEA";
  const others = fields.filter((f) => f.name !== "value");
  const at = fields.findIndex((f) => f.name === "value");
  if (at < 0 || others.length > 0) {
    throw new Error(
      `format '${format}' reads and writes one column \`value\` of type ${want}` +
        (others.length > 0 ? `; the table also has ${others.map((f) => `\`${f.name}\``).join(", ")} (METADATA FROM columns may be added)` : ""),
    );
  }
  if (fields[at]!.type.kind !== kind) throw new Error(`format '${format}': column \`value\` is ${typeName(fields[at]!.type)}; declare it ${want}`);
  return at;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const empty = new Uint8Array(0);

export const rawString = defineFormat({
  name: "raw_string",
  description: "Each record as UTF-8 text in one TEXT column `value`",
  options: {},
  validate: ({ fields }) => void valueColumn(fields, "raw_string", "string"),
  deserializer({ fields }) {
    valueColumn(fields, "raw_string", "string");
    return {
      deserialize(data): Row {
        if (typeof data === "string") return [data];
        try {
          return [decoder.decode(data)];
        } catch {
          throw new Error("the record is not valid UTF-8; read it with format 'raw_bytes' into a BYTEA column");
        }
      },
    };
  },
  serializer({ fields }) {
    const at = valueColumn(fields, "raw_string", "string");
    return { serialize: (row) => (row[at] ?? "") as string };
  },
});

export const rawBytes = defineFormat({
  name: "raw_bytes",
  description: "Each record's bytes in one BYTEA column `value`",
  options: {},
  validate: ({ fields }) => void valueColumn(fields, "raw_bytes", "bytes"),
  deserializer({ fields }) {
    valueColumn(fields, "raw_bytes", "bytes");
    // A copy: the connector's buffer may be reused for the next records.
    return { deserialize: (data): Row => [Uint8Array.from(recordBytes(data))] };
  },
  serializer({ fields }) {
    const at = valueColumn(fields, "raw_bytes", "bytes");
    return { serialize: (row) => (row[at] as Uint8Array | null) ?? empty };
  },
});

export default definePlugin({ name: "format-raw", version: "0.1.0", formats: [rawString, rawBytes] });
