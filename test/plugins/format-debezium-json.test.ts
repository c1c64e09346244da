import { describe, expect, test } from "bun:test";
import { field, ROW_CHANGE, RowOp, t, type ChangeRow, type Field } from "../../core/plugin-api/index.ts";
import plugin, { debeziumJson } from "../../plugins/format-debezium-json/index.ts";
import { coerce } from "./kit.ts";

const FIELDS: Field[] = [field("k", t.string()), field("n", t.bigint()), field("at", t.timestamp())];
const TS = Date.UTC(2024, 0, 1) * 1000;
const ctx = (raw: Record<string, string> = {}, fields = FIELDS) => ({ options: coerce(debeziumJson.options, raw), fields });
const change = (row: unknown) => (row as ChangeRow)[ROW_CHANGE];

describe("debezium_json format", () => {
  test("is an updating format with timestamp_format and include_schema", () => {
    expect(plugin.formats!.map((f) => f.name)).toEqual(["debezium_json"]);
    expect(debeziumJson.updating).toBe(true);
    expect(coerce(debeziumJson.options, {})).toEqual({ timestamp_format: "rfc3339", include_schema: false });
  });

  test("writes Debezium envelopes for inserts, updates and deletes", () => {
    const w = debeziumJson.serializer!(ctx());
    const a = ["a", 1, TS];
    const b = ["a", 2, TS + 1000];
    expect(JSON.parse(w.serialize(a, RowOp.Insert, null) as string)).toEqual({ before: null, after: { k: "a", n: 1, at: "2024-01-01T00:00:00Z" }, op: "c" });
    expect(JSON.parse(w.serialize(b, RowOp.Update, a) as string)).toEqual({
      before: { k: "a", n: 1, at: "2024-01-01T00:00:00Z" },
      after: { k: "a", n: 2, at: "2024-01-01T00:00:00.001Z" },
      op: "u",
    });
    expect(JSON.parse(w.serialize(b, RowOp.Delete, null) as string)).toEqual({ before: { k: "a", n: 2, at: "2024-01-01T00:00:00.001Z" }, after: null, op: "d" });
    expect(w.serialize(a)).toBe('{"before":null,"after":{"k":"a","n":1,"at":"2024-01-01T00:00:00Z"},"op":"c"}');
    expect(debeziumJson.serializer!(ctx({ timestamp_format: "unix_millis" })).serialize(a)).toBe('{"before":null,"after":{"k":"a","n":1,"at":1704067200000},"op":"c"}');
    expect(debeziumJson.serializer!(ctx({ timestamp_format: "unix_micros" })).serialize(a)).toBe('{"before":null,"after":{"k":"a","n":1,"at":1704067200000000},"op":"c"}');
  });

  test("reads c and r as inserts, u as an update with its previous row, d as a delete of before", () => {
    const r = debeziumJson.deserializer!(ctx());
    const ins = r.deserialize('{"before": null, "after": {"k": "a", "n": 3}, "op": "c"}')!;
    expect(ins).toEqual(["a", 3, null]);
    expect(change(ins)).toBeUndefined();
    expect(change(r.deserialize('{"after": {"k": "a", "n": 3}, "op": "r"}'))).toBeUndefined();
    const upd = r.deserialize('{"before": {"k": "a", "n": 3}, "after": {"k": "a", "n": 5}, "op": "u"}')!;
    expect([...upd]).toEqual(["a", 5, null]);
    expect(change(upd)).toEqual({ op: RowOp.Update, before: ["a", 3, null] });
    const noBefore = r.deserialize('{"before": null, "after": {"k": "a", "n": 6}, "op": "u"}')!;
    expect(change(noBefore)).toEqual({ op: RowOp.Update, before: null });
    const del = r.deserialize('{"before": {"k": "a", "n": 5}, "after": null, "op": "d"}')!;
    expect([...del]).toEqual(["a", 5, null]);
    expect(change(del)).toEqual({ op: RowOp.Delete, before: null });
  });

  test("tombstones are skipped; bad events name what is wrong", () => {
    const r = debeziumJson.deserializer!(ctx());
    expect(r.skipsEmptyRecords).toBe(true);
    expect(r.deserialize('{"schema": {"type": "struct"}, "payload": null}')).toBeNull();
    expect(() => r.deserialize('{"op": "c", "after": null}')).toThrow("`after`");
    expect(() => r.deserialize('{"op": "d", "before": null}')).toThrow("`before`");
    expect(() => r.deserialize('{"op": "x", "after": {}}')).toThrow('unknown Debezium op "x"; expected c, r, u or d');
    expect(() => r.deserialize('{"op": "c", "after": {"n": "x"}}')).toThrow('field `n`: expected BIGINT, got "x"');
  });

  test("timestamps follow the Debezium type in the schema envelope, else timestamp_format", () => {
    const fields = [field("a", t.timestamp()), field("b", t.timestamp()), field("c", t.timestamp()), field("d", t.timestamp()), field("e", t.timestamp())];
    const us = TS + 123_456; // 2024-01-01T00:00:00.123456Z
    const schema = {
      type: "struct",
      fields: [
        {
          type: "struct",
          field: "after",
          fields: [
            { field: "a", type: "int64", name: "io.debezium.time.Timestamp" },
            { field: "b", type: "int64", name: "io.debezium.time.MicroTimestamp" },
            { field: "c", type: "int64", name: "io.debezium.time.NanoTimestamp" },
            { field: "d", type: "string", name: "io.debezium.time.ZonedTimestamp" },
            { field: "e", type: "int32", name: "io.debezium.time.Date" },
          ],
        },
      ],
    };
    const payload = { before: null, after: { a: (us - 456) / 1000, b: us, c: us * 1000, d: "2024-01-01T02:00:00.123456+02:00", e: 19723 }, op: "c" };
    const row = debeziumJson.deserializer!(ctx({}, fields)).deserialize(JSON.stringify({ schema, payload }))!;
    expect(row).toEqual([us - 456, us, us, us, TS]);
    // Without a schema, numbers are read in the unit timestamp_format names.
    const plain = JSON.stringify({ after: { a: us }, op: "c" });
    expect(debeziumJson.deserializer!(ctx({ timestamp_format: "unix_micros" }, fields)).deserialize(plain)![0]).toBe(us);
    expect(debeziumJson.deserializer!(ctx({ timestamp_format: "unix_nanos" }, fields)).deserialize(JSON.stringify({ after: { a: us * 1000 }, op: "c" }))![0]).toBe(us);
  });

  test("Connect Decimal values are read from their unscaled bytes", () => {
    const fields = [field("price", t.double()), field("debt", t.double())];
    const schema = {
      type: "struct",
      fields: [{ type: "struct", field: "after", fields: [
        { field: "price", type: "bytes", name: "org.apache.kafka.connect.data.Decimal", parameters: { scale: "2" } },
        { field: "debt", type: "bytes", name: "org.apache.kafka.connect.data.Decimal", parameters: { scale: "1" } },
      ] }],
    };
    // 12345 (0x3039) at scale 2 and -5 (0xfb) at scale 1.
    const payload = { after: { price: Buffer.from([0x30, 0x39]).toString("base64"), debt: Buffer.from([0xfb]).toString("base64") }, op: "r" };
    expect(debeziumJson.deserializer!(ctx({}, fields)).deserialize(JSON.stringify({ schema, payload }))).toEqual([123.45, -0.5]);
  });

  test("include_schema writes the Connect envelope that reading takes back", () => {
    const w = debeziumJson.serializer!(ctx({ include_schema: "true" }));
    const a = ["a", 1, TS + 7];
    const b = ["a", 2, TS + 9];
    const text = w.serialize(b, RowOp.Update, a) as string;
    const parsed = JSON.parse(text);
    expect(parsed.schema.fields.map((f: any) => f.field)).toEqual(["before", "after", "op"]);
    expect(parsed.schema.fields[1].fields).toContainEqual({ type: "int64", optional: true, name: "io.debezium.time.MicroTimestamp", field: "at" });
    expect(parsed.payload).toEqual({ before: { k: "a", n: 1, at: TS + 7 }, after: { k: "a", n: 2, at: TS + 9 }, op: "u" });
    const back = debeziumJson.deserializer!(ctx()).deserialize(text)!;
    expect([...back]).toEqual(b);
    expect(change(back)).toEqual({ op: RowOp.Update, before: a });
  });
});
