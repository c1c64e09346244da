/** MAP columns through protobuf map fields: read into MAP<K, V> (keys by their protobuf type), written back, NULL values refused. */
import { describe, expect, test } from "bun:test";
import { field, t, type Field } from "../../../core/plugin-api/index.ts";
import { messageReader, messageType, messageWriter, parseProtoSchema } from "../../../plugins/format-protobuf/codec.ts";

const PROTO = `syntax = "proto3";
message Item { string name = 1; }
message Event {
  int64 id = 1;
  map<string, int64> counts = 2;
  map<int32, Item> items = 3;
  map<bool, string> flags = 4;
}`;
const FIELDS: Field[] = [
  field("id", t.bigint(), false),
  field("counts", t.map(t.string(), t.bigint())),
  field("items", t.map(t.int(), t.struct([field("name", t.string())]))),
  field("flags", t.map(t.boolean(), t.string())),
];

describe("protobuf maps", () => {
  const type = messageType(parseProtoSchema(PROTO), "Event", "the test");

  test("round trip through the wire format, keys typed as the column declares", () => {
    const write = messageWriter(FIELDS, type);
    const read = messageReader(type, FIELDS);
    if (write instanceof Error || read instanceof Error) throw write instanceof Error ? write : read;
    const row = [3, [["a", 1], ["b", 2]], [[7, { name: "x" }]], [[true, "yes"]]];
    const bytes = type.encode(type.fromObject(write(row))).finish();
    expect(read(type.decode(bytes))).toEqual(row);
  });

  test("a NULL map value cannot be written (a protobuf map has none), and the error says what to do", () => {
    const write = messageWriter(FIELDS, type);
    if (write instanceof Error) throw write;
    expect(() => write([1, [["a", null]], null, null])).toThrow(/the value of key "a" is NULL, which a protobuf map cannot hold; write coalesce/);
  });

  test("keys of another type than the column's are refused when planning", () => {
    const err = messageReader(type, [field("id", t.bigint(), false), field("items", t.map(t.string(), t.json()))]);
    expect((err as Error).message).toMatch(/field `items` is a map<int32, Item>; its keys are int32, which column `items`'s TEXT keys cannot hold exactly/);
  });
});
