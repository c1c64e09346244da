import { describe, expect, test } from "bun:test";
import { field, t, type Field } from "../../core/plugin-api/index.ts";
import { formatTimestamp, parseTimestampText } from "../../plugins/format-json/codec.ts";
import plugin, { json } from "../../plugins/format-json/index.ts";
import { coerce } from "./kit.ts";

const formatCtx = (fields: Field[], raw: Record<string, string> = {}) => ({ options: coerce(json.options, raw), fields });
const reader = (fields: Field[], raw: Record<string, string> = {}) => json.deserializer!(formatCtx(fields, raw));
const writer = (fields: Field[], raw: Record<string, string> = {}) => json.serializer!(formatCtx(fields, raw));

const TS = Date.UTC(2024, 0, 1) * 1000;

const FIELDS: Field[] = [
  field("id", t.bigint(), false),
  field("name", t.string()),
  field("price", t.double()),
  field("ok", t.boolean()),
  field("at", t.timestamp()),
  field("tags", t.array(t.string())),
  field("payload", t.json()),
  field("blob", t.bytes()),
  field("bid", t.struct([field("auction", t.bigint(), false), field("datetime", t.timestamp())])),
];

describe("timestamps", () => {
  test("parse RFC 3339 at microsecond precision, with zones", () => {
    expect(parseTimestampText("2024-01-01T00:00:00Z")).toBe(TS);
    expect(parseTimestampText("2024-01-01T00:00:00.123456Z")).toBe(TS + 123456);
    expect(parseTimestampText("2024-01-01T00:00:00.123456789Z")).toBe(TS + 123456);
    expect(parseTimestampText("2024-01-01T00:00:00.5Z")).toBe(TS + 500000);
    expect(parseTimestampText("2024-01-01 02:00:00+02:00")).toBe(TS);
    expect(parseTimestampText("2023-12-31T19:00:00-05:00")).toBe(TS);
    expect(parseTimestampText("2024-01-01")).toBe(TS);
    expect(parseTimestampText("1969-12-31T23:59:59.999999Z")).toBe(-1);
    expect(parseTimestampText("2024-02-30T00:00:00Z")).toBeNull();
    expect(parseTimestampText("yesterday")).toBeNull();
  });

  test("format with fractions only when needed", () => {
    expect(formatTimestamp(TS)).toBe("2024-01-01T00:00:00Z");
    expect(formatTimestamp(TS + 250_000)).toBe("2024-01-01T00:00:00.250Z");
    expect(formatTimestamp(TS + 1)).toBe("2024-01-01T00:00:00.000001Z");
    expect(formatTimestamp(TS + 123_456)).toBe("2024-01-01T00:00:00.123456Z");
    expect(formatTimestamp(-1)).toBe("1969-12-31T23:59:59.999999Z");
    for (const us of [TS, TS + 1, TS + 999_999, -1, -1_000_001, 0]) expect(parseTimestampText(formatTimestamp(us))).toBe(us);
  });

  test("a run of timestamps across seconds, forward and back, formats each as Date's own ISO text gives it", () => {
    const run = [TS + 999_999, TS + 1_000_000, TS + 999_000, TS - 1, TS + 5_000_250, TS + 5_000_000, TS + 1, -1, -1_000_000, 0, 253402300799999999];
    for (let i = 0; i < 2000; i++) run.push(TS + i * 1237);
    for (const us of run) {
      const ms = Math.floor(us / 1000);
      const sub = us - ms * 1000;
      const iso = new Date(ms).toISOString();
      const want = sub !== 0 ? iso.slice(0, -1) + String(sub).padStart(3, "0") + "Z" : ms % 1000 === 0 ? iso.slice(0, -5) + "Z" : iso;
      expect(formatTimestamp(us)).toBe(want);
    }
  });
});

describe("json format", () => {
  test("is registered with its options", () => {
    expect(plugin.formats!.map((f) => f.name)).toEqual(["json"]);
    expect(coerce(json.options, {})).toEqual({
      timestamp_format: "rfc3339",
      unstructured: false,
      decimal_encoding: "number",
      include_schema: false,
      confluent_schema_registry: false,
      "schema_registry.auto_register": true,
    });
    expect(() => coerce(json.options, { timestamp_format: "iso" })).toThrow("not one of");
  });

  test("reads objects by column name, converting per type", () => {
    const r = reader(FIELDS);
    const row = r.deserialize(
      JSON.stringify({
        extra: 1,
        name: "x",
        id: "42",
        price: "1.5",
        ok: true,
        at: "2024-01-01T00:00:00.000001Z",
        tags: ["a", null],
        payload: { k: [1, 2] },
        blob: "AQID",
        bid: { auction: 7, datetime: 1704067200000 },
      }),
    );
    expect(row).toEqual([42, "x", 1.5, true, TS + 1, ["a", null], '{"k":[1,2]}', new Uint8Array([1, 2, 3]), { auction: 7, datetime: TS }]);
    expect(r.deserialize(new TextEncoder().encode('{"id": 1}'))).toEqual([1, null, null, null, null, null, null, null, null]);
  });

  test("timestamps read from unix millis under either timestamp_format", () => {
    const f = [field("at", t.timestamp())];
    expect(reader(f).deserialize('{"at": 1704067200000}')).toEqual([TS]);
    expect(reader(f, { timestamp_format: "unix_millis" }).deserialize('{"at": "1704067200000"}')).toEqual([TS]);
    expect(reader(f, { timestamp_format: "unix_millis" }).deserialize('{"at": "2024-01-01T00:00:00Z"}')).toEqual([TS]);
  });

  test("errors name the field, the expected type and the value", () => {
    const r = reader(FIELDS);
    expect(() => r.deserialize('{"id": "abc"}')).toThrow('field `id`: expected BIGINT, got "abc"');
    expect(() => r.deserialize('{"id": 1.5}')).toThrow("field `id`: expected BIGINT, got 1.5 (not a whole number)");
    expect(() => r.deserialize('{"name": "x"}')).toThrow("missing field `id`");
    expect(() => r.deserialize('{"id": null}')).toThrow("missing field `id`");
    expect(() => r.deserialize('{"id": 1, "name": 5}')).toThrow("field `name`: expected TEXT, got 5");
    expect(() => r.deserialize('{"id": 1, "at": "noon"}')).toThrow('field `at`: expected TIMESTAMP, got "noon"');
    expect(() => r.deserialize('{"id": 1, "bid": {"auction": "x"}}')).toThrow('field `bid.auction`: expected BIGINT, got "x"');
    expect(() => r.deserialize('{"id": 1, "bid": {}}')).toThrow("missing field `bid.auction`");
    expect(() => r.deserialize('{"id": 1, "tags": "a"}')).toThrow('field `tags`: expected TEXT[], got "a"');
    expect(() => r.deserialize('{"id": 1, "ok": 1}')).toThrow("field `ok`: expected BOOLEAN, got 1");
    expect(() => r.deserialize("[1]")).toThrow("expected a JSON object, got [1]");
    expect(() => r.deserialize("{oops")).toThrow("invalid JSON");
    expect(() => reader([field("n", t.int())]).deserialize('{"n": 3000000000}')).toThrow("out of range");
    expect(() => reader([field("n", t.ubigint())]).deserialize('{"n": -1}')).toThrow("out of range");
  });

  test("keys named like Object.prototype members are not inherited", () => {
    expect(reader([field("constructor", t.string())]).deserialize("{}")).toEqual([null]);
    expect(reader([field("constructor", t.string())]).deserialize('{"constructor": "c"}')).toEqual(["c"]);
  });

  test("writes objects keyed by column name", () => {
    const w = writer(FIELDS);
    const row = [1, "x", 2.5, false, TS + 500_000, ["a"], '{"k":1}', new Uint8Array([1, 2, 3]), { auction: 7, datetime: TS }];
    const text = w.serialize(row) as string;
    expect(JSON.parse(text)).toEqual({
      id: 1,
      name: "x",
      price: 2.5,
      ok: false,
      at: "2024-01-01T00:00:00.500Z",
      tags: ["a"],
      payload: { k: 1 },
      blob: "AQID",
      bid: { auction: 7, datetime: "2024-01-01T00:00:00Z" },
    });
    expect(text.startsWith('{"id":1,"name":"x"')).toBe(true);
    expect(w.serialize([2, null, null, null, null, null, null, null, null])).toBe(
      '{"id":2,"name":null,"price":null,"ok":null,"at":null,"tags":null,"payload":null,"blob":null,"bid":null}',
    );
  });

  test("round trips through serialize and deserialize", () => {
    for (const tsFormat of ["rfc3339", "unix_millis"]) {
      const w = writer(FIELDS, { timestamp_format: tsFormat });
      const r = reader(FIELDS, { timestamp_format: tsFormat });
      const row = [9, "é\n\"", -0.25, true, TS + 7000, ["x", null, "y"], '[1,{"a":null}]', new Uint8Array([0, 255]), { auction: 3, datetime: TS }];
      expect(r.deserialize(w.serialize(row))).toEqual(row);
    }
  });

  test("a MAP column is a JSON object both ways: keys read as the key type, values per the value type", () => {
    const f = [field("m", t.map(t.string(), t.timestamp())), field("counts", t.map(t.bigint(), t.array(t.bigint())))];
    const row = reader(f).deserialize('{"m": {"a": "2024-01-01T00:00:00Z", "b": null}, "counts": {"7": [1, 2], "-3": []}}');
    if (!row) throw new Error("no row");
    // Objects keep their keys' order except that integer-like keys come first (JavaScript's rule), so sort to compare.
    expect(row[0]).toEqual([["a", TS], ["b", null]]);
    expect((row[1] as [number, number[]][]).sort((x, y) => x[0] - y[0])).toEqual([[-3, []], [7, [1, 2]]]);
    expect(JSON.parse(writer(f).serialize([[["a", TS], ["b", null]], [[7, [1]]]]) as string)).toEqual({ m: { a: "2024-01-01T00:00:00Z", b: null }, counts: { "7": [1] } });
    expect(() => reader(f).deserialize('{"counts": {"x": [1]}}')).toThrow('field `counts key`: expected BIGINT, got "x"');
    expect(() => reader(f).deserialize('{"m": [["a", 1]]}')).toThrow("field `m`: expected MAP<TEXT, TIMESTAMP>");
  });

  test("a record read in place from a larger buffer reads as its own bytes do (BOM, non-ASCII, malformed UTF-8)", () => {
    const enc = new TextEncoder();
    const records = [
      enc.encode('{"id": 1, "name": "é\\u00e9 😀"}'),
      Uint8Array.of(0xef, 0xbb, 0xbf, ...enc.encode('{"id": 2, "name": "bom"}')),
      Uint8Array.of(...enc.encode('{"id": 3, "name": "'), 0xff, 0x41, ...enc.encode('"}')),
    ];
    const cases: [Field[], Record<string, string>][] = [
      [FIELDS, {}],
      [[field("value", t.string())], { unstructured: "true" }],
      [FIELDS, { include_schema: "true" }],
    ];
    for (const [fields, raw] of cases) {
      const r = reader(fields, raw);
      for (const rec of records) {
        const buf = Uint8Array.of(9, 9, ...rec, 9);
        expect(r.deserializeRange!(buf, 2, 2 + rec.length)).toEqual(r.deserialize(rec)!);
      }
    }
    expect(reader(FIELDS).deserializeRange!(Uint8Array.of(0, ...records[0]!), 1, records[0]!.length + 1)!.slice(0, 2)).toEqual([1, "éé 😀"]);
    expect(reader(FIELDS).deserializeRange!(records[1]!, 0, records[1]!.length)!.slice(0, 2)).toEqual([2, "bom"]);
    expect(reader(FIELDS).deserializeRange!(records[2]!, 0, records[2]!.length)!.slice(0, 2)).toEqual([3, "\uFFFDA"]);
    expect(() => reader(FIELDS).deserializeRange!(enc.encode('x{"id": 1}'), 0, 5)).toThrow("invalid JSON");
  });

  test("integer columns read as exactly as before the common case was inlined: ranges, whole numbers, text, NULL", () => {
    const f = [field("i", t.int()), field("b", t.bigint(), false), field("d", t.double()), field("s", t.string()), field("ok", t.boolean())];
    const r = reader(f);
    expect(r.deserialize('{"i": 2147483647, "b": -9007199254740991, "d": 1, "s": "x", "ok": false}')).toEqual([2147483647, -9007199254740991, 1, "x", false]);
    expect(r.deserialize('{"i": -2147483648, "b": "12", "d": "2.5", "s": null, "ok": "true"}')).toEqual([-2147483648, 12, 2.5, null, true]);
    expect(r.deserialize('{"i": null, "b": 0}')).toEqual([null, 0, null, null, null]);
    expect(() => r.deserialize('{"i": 2147483648, "b": 0}')).toThrow("field `i`: expected INT, got 2147483648 (out of range)");
    expect(() => r.deserialize('{"i": 1.5, "b": 0}')).toThrow("(not a whole number)");
    expect(() => r.deserialize('{"b": 1e400}')).toThrow("field `b`: expected BIGINT");
    expect(() => r.deserialize('{"b": 0, "d": true}')).toThrow("field `d`: expected DOUBLE, got true");
  });

  test("a column named __proto__ is a field like any other, written and read", () => {
    const f = [field("__proto__", t.bigint()), field("x", t.string())];
    const text = writer(f).serialize([5, "a"]) as string;
    expect(text).toBe('{"__proto__":5,"x":"a"}');
    expect(reader(f).deserialize(text)).toEqual([5, "a"]);
    expect(reader(f).deserialize('{"x": "a"}')).toEqual([null, "a"]);
  });

  test("unix_millis writes integer milliseconds", () => {
    const w = writer([field("at", t.timestamp())], { timestamp_format: "unix_millis" });
    expect(w.serialize([TS + 1500])).toBe('{"at":1704067200001}');
  });

  test("unstructured keeps the record text whole in `value`", () => {
    const fields = [field("value", t.json())];
    const r = reader(fields, { unstructured: "true" });
    expect(r.deserialize('{"a": [1, 2]}')).toEqual(['{"a": [1, 2]}']);
    expect(writer(fields, { unstructured: "true" }).serialize(['{"a":1}'])).toBe('{"a":1}');
    expect(() => reader([field("x", t.string())], { unstructured: "true" })).toThrow("`value`");
  });
});
