/** MAP columns through Avro maps (whose keys are strings): read, written with a given schema and with the one Runnel generates. */
import { describe, expect, test } from "bun:test";
import { field, t, type Field } from "../../../core/plugin-api/index.ts";
import { parseAvroSchema, recordReader, recordWriter, schemaForFields } from "../../../plugins/format-avro/codec.ts";

const FIELDS: Field[] = [field("id", t.bigint(), false), field("attrs", t.map(t.string(), t.bigint())), field("nested", t.map(t.string(), t.array(t.string())))];
const SCHEMA = {
  type: "record",
  name: "r",
  fields: [
    { name: "id", type: "long" },
    { name: "attrs", type: ["null", { type: "map", values: "long" }] },
    { name: "nested", type: { type: "map", values: { type: "array", items: "string" } } },
  ],
};

describe("Avro maps", () => {
  test("round trip through avsc's binary encoding, NULL values included", () => {
    const type = parseAvroSchema(schemaForFields(FIELDS, "t"), "generated");
    const write = recordWriter(FIELDS, type);
    const read = recordReader(type, FIELDS);
    if (write instanceof Error || read instanceof Error) throw write instanceof Error ? write : read;
    const row = [1, [["a", 1], ["b", null]], [["x", ["p", "q"]]]];
    const bytes = (type as any).toBuffer(write(row));
    expect(read((type as any).fromBuffer(bytes))).toEqual(row);
  });

  test("a writer's map field reads into a MAP<TEXT, ...> column", () => {
    const type = parseAvroSchema(SCHEMA, "schema");
    const read = recordReader(type, FIELDS);
    if (read instanceof Error) throw read;
    const bytes = (type as any).toBuffer({ id: 5, attrs: { k: 9 }, nested: { n: ["z"] } });
    expect(read((type as any).fromBuffer(bytes))).toEqual([5, [["k", 9]], [["n", ["z"]]]]);
  });

  test("a map into a column with non-text keys is refused, naming the column and the type to declare", () => {
    const type = parseAvroSchema(SCHEMA, "schema");
    const err = recordReader(type, [field("id", t.bigint(), false), field("attrs", t.map(t.bigint(), t.bigint()))]);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/field `attrs` is an Avro map, whose keys are strings; declare column `attrs` as MAP<TEXT, \.\.\.>/);
  });
});
