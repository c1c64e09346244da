import { describe, expect, test } from "bun:test";
import { field, RowOp, t, type Field } from "../../core/plugin-api/index.ts";
import plugin, { debeziumJson } from "../../plugins/format-debezium-json/index.ts";
import { coerce } from "./kit.ts";

const FIELDS: Field[] = [field("k", t.string()), field("n", t.bigint()), field("at", t.timestamp())];
const TS = Date.UTC(2024, 0, 1) * 1000;
const ctx = (raw: Record<string, string> = {}) => ({ options: coerce(debeziumJson.options, raw), fields: FIELDS });

describe("debezium_json format", () => {
  test("is an updating format with timestamp_format", () => {
    expect(plugin.formats!.map((f) => f.name)).toEqual(["debezium_json"]);
    expect(debeziumJson.updating).toBe(true);
    expect(coerce(debeziumJson.options, {})).toEqual({ timestamp_format: "rfc3339" });
  });

  test("writes Debezium envelopes for inserts, updates and deletes", () => {
    const w = debeziumJson.serializer!(ctx());
    const a = ["a", 1, TS];
    const b = ["a", 2, TS + 1000];
    expect(JSON.parse(w.serialize(a, RowOp.Insert, null) as string)).toEqual({
      before: null,
      after: { k: "a", n: 1, at: "2024-01-01T00:00:00Z" },
      op: "c",
    });
    expect(JSON.parse(w.serialize(b, RowOp.Update, a) as string)).toEqual({
      before: { k: "a", n: 1, at: "2024-01-01T00:00:00Z" },
      after: { k: "a", n: 2, at: "2024-01-01T00:00:00.001Z" },
      op: "u",
    });
    expect(JSON.parse(w.serialize(b, RowOp.Delete, b) as string)).toEqual({
      before: { k: "a", n: 2, at: "2024-01-01T00:00:00.001Z" },
      after: null,
      op: "d",
    });
    // An append-only row is an insert.
    expect(w.serialize(a)).toBe('{"before":null,"after":{"k":"a","n":1,"at":"2024-01-01T00:00:00Z"},"op":"c"}');
    expect(debeziumJson.serializer!(ctx({ timestamp_format: "unix_millis" })).serialize(a)).toBe(
      '{"before":null,"after":{"k":"a","n":1,"at":1704067200000},"op":"c"}',
    );
  });

  test("reads the after image, or the before image of a delete", () => {
    const w = debeziumJson.serializer!(ctx());
    const r = debeziumJson.deserializer!(ctx());
    const a = ["a", 1, TS + 1];
    expect(r.deserialize(w.serialize(a, RowOp.Insert, null))).toEqual(a);
    expect(r.deserialize(w.serialize(a, RowOp.Delete, a))).toEqual(a);
    expect(r.deserialize(JSON.stringify({ schema: {}, payload: { before: null, after: { k: "z" }, op: "r" } }))).toEqual(["z", null, null]);
    expect(() => r.deserialize('{"op": "c", "after": null}')).toThrow("`after`");
    expect(() => r.deserialize('{"op": "c", "after": {"n": "x"}}')).toThrow('field `n`: expected BIGINT, got "x"');
  });
});
