/**
 * The wire reader (messages straight into rows) against the reference path it
 * replaces for plain scalar columns: protobufjs's decoder followed by
 * messageReader. Every message, well-formed or not, must give the same row or
 * the same error both ways.
 */
import { describe, expect, test } from "bun:test";
import protobuf from "protobufjs";
import { field, t, type Field, type Row } from "../../../core/plugin-api/index.ts";
import { messageReader, messageType, parseProtoSchema } from "../../../plugins/format-protobuf/codec.ts";
import { protobufFormat } from "../../../plugins/format-protobuf/index.ts";
import { compileWireReader } from "../../../plugins/format-protobuf/wire-reader.ts";
import { coerce, outcome, seededRandom } from "../kit.ts";

const PROTO = `syntax = "proto3";
enum Color { RED = 0; GREEN = 1; BLUE = 2; }
message Nested { string s = 1; }
message All {
  int32 i32 = 1; uint32 u32 = 2; sint32 s32 = 3; fixed32 f32 = 4; sfixed32 sf32 = 5;
  int64 i64 = 6; uint64 u64 = 7; sint64 s64 = 8; fixed64 f64 = 9; sfixed64 sf64 = 10;
  bool flag = 11; float fl = 12; double db = 13; string text = 14;
  Color color = 15; Color color_num = 16;
  optional int64 maybe = 17; optional string maybe_text = 18;
  Nested nested = 19; bytes blob = 20; repeated int32 many = 21;
}`;
const FIELDS: Field[] = [
  field("i32", t.int(), false), field("u32", t.bigint()), field("s32", t.int()), field("f32", t.bigint()), field("sf32", t.int()),
  field("i64", t.bigint()), field("u64", t.bigint()), field("s64", t.bigint()), field("f64", t.bigint()), field("sf64", t.bigint()),
  field("flag", t.boolean()), field("fl", t.float()), field("db", t.double()), field("text", t.string()),
  field("color", t.string()), field("color_num", t.int()),
  field("maybe", t.bigint()), field("maybe_text", t.string()), field("absent_column", t.string()),
];

const type = messageType(parseProtoSchema(PROTO), "All", "the test");

function reference(fields: Field[]): (bytes: Uint8Array, start: number, end: number) => Row {
  const toRow = messageReader(type, fields);
  if (toRow instanceof Error) throw toRow;
  return (bytes, start, end) => {
    const r = protobuf.Reader.create(bytes);
    r.pos = start;
    let m: unknown;
    try {
      m = type.decode(r, end - start);
    } catch (err) {
      throw new Error(`not a message: ${(err as Error).message}`);
    }
    return toRow(m);
  };
}

describe("protobuf wire reader", () => {
  const slow = reference(FIELDS);
  let fallbacks = 0;
  const fast = compileWireReader(type, FIELDS, (bytes, start, end) => (fallbacks++, slow(bytes, start, end)))!;

  test("is used for plain scalar and enum columns", () => {
    expect(fast).not.toBeNull();
  });

  test("reads random messages exactly as protobufjs and messageReader do, in place inside a larger buffer", () => {
    const next = seededRandom(14);
    const pick = <T,>(xs: T[]) => xs[Math.floor(next() * xs.length)]!;
    const int64s = [0, 1, -1, 2 ** 31, -(2 ** 31) - 1, 2 ** 53 - 1, -(2 ** 53) + 1, 2 ** 62, -(2 ** 63), 2 ** 63 - 1024, 123456789012];
    for (let n = 0; n < 2000; n++) {
      const m: Record<string, unknown> = {};
      const maybe = (name: string, v: () => unknown) => {
        if (next() < 0.7) m[name] = v();
      };
      maybe("i32", () => pick([0, 1, -1, 2 ** 31 - 1, -(2 ** 31), Math.floor(next() * 1e6) - 5e5]));
      maybe("u32", () => pick([0, 1, 2 ** 32 - 1, Math.floor(next() * 2 ** 32)]));
      maybe("s32", () => pick([0, -1, 1, -(2 ** 31), 2 ** 31 - 1]));
      maybe("f32", () => pick([0, 2 ** 32 - 1, 12345]));
      maybe("sf32", () => pick([0, -1, -(2 ** 31), 2 ** 31 - 1]));
      for (const name of ["i64", "s64", "sf64"]) maybe(name, () => pick(int64s));
      for (const name of ["u64", "f64"]) maybe(name, () => Math.abs(pick(int64s)));
      maybe("flag", () => next() < 0.5);
      maybe("fl", () => pick([0, 1.5, -3.25, 3.4e38, 1e-40, NaN, Infinity]));
      maybe("db", () => pick([0, 0.1, -1e300, 5e-324, NaN, -Infinity]));
      maybe("text", () => pick(["", "a", "é😀", "x".repeat(300)]));
      maybe("color", () => pick([0, 1, 2, 7]));
      maybe("color_num", () => pick([0, 2, 9]));
      maybe("maybe", () => pick([0, 5, -5]));
      maybe("maybe_text", () => pick(["", "t"]));
      // Fields without a column: skipped by the wire reader, decoded by protobufjs.
      maybe("nested", () => ({ s: "n" }));
      maybe("blob", () => new Uint8Array([1, 2, 3]));
      maybe("many", () => [1, -2, 3]);
      const body = type.encode(type.fromObject(m)).finish();
      const buf = Uint8Array.of(0xff, 0x08, ...body, 0x08, 0x01);
      expect(outcome(() => fast(buf, 2, 2 + body.length))).toEqual(outcome(() => slow(buf, 2, 2 + body.length)));
    }
    // Only the defaults (an empty message) went through protobufjs: every record was read by the wire reader.
    expect(fallbacks).toBe(1);
  });

  test("malformed messages give protobufjs's error (or its row) either way: truncated, a wrong wire type, groups, field 0", () => {
    const body = type.encode(type.fromObject({ i32: 300, text: "hello", i64: 2 ** 40, db: 1.5 })).finish();
    const cases: Uint8Array[] = [
      body.subarray(0, body.length - 1),
      body.subarray(0, 2),
      Uint8Array.of(0x08, 0xff, 0xff),
      Uint8Array.of(0x72, 0x05, 0x61), // string field 14 longer than the message
      Uint8Array.of(0x0d, 1, 2, 3, 4), // field 1 (int32) with wire type 5
      Uint8Array.of(0x0b, 0x0c), // a group
      Uint8Array.of(0x00, 0x01), // field 0
      Uint8Array.of(0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01), // an 11-byte varint
      Uint8Array.of(0xf8, 0xff, 0xff, 0xff, 0x0f, 0x01), // an unknown field number far beyond the message's
    ];
    for (const c of cases) expect(outcome(() => fast(c, 0, c.length))).toEqual(outcome(() => slow(c, 0, c.length)));
  });

  test("leaves tables it cannot read exactly to protobufjs: nested, bytes, repeated columns, NOT NULL optional fields, proto2 required", () => {
    const slowFor = (fields: Field[]) => reference(fields);
    for (const fields of [
      [field("nested", t.struct([field("s", t.string())]))],
      [field("blob", t.bytes())],
      [field("many", t.array(t.int()))],
      [field("text", t.json())],
      [field("maybe", t.bigint(), false)],
    ]) {
      expect(compileWireReader(type, fields, slowFor(fields))).toBeNull();
    }
    const p2 = messageType(parseProtoSchema(`syntax = "proto2"; message R { required int32 a = 1; optional int32 b = 2 [default = 7]; }`), "R", "the test");
    expect(compileWireReader(p2, [field("a", t.int())], () => [null])).toBeNull();
  });

  test("proto2 declared defaults read as protobufjs gives them", () => {
    const p2 = messageType(parseProtoSchema(`syntax = "proto2"; enum E { A = 1; B = 2; } message R { optional int32 b = 2 [default = 7]; optional E e = 3 [default = B]; optional string s = 4 [default = "d"]; }`), "R", "the test");
    const fields = [field("b", t.int()), field("e", t.string()), field("s", t.string())];
    const toRow = messageReader(p2, fields);
    if (toRow instanceof Error) throw toRow;
    const ref = (bytes: Uint8Array, start: number, end: number) => toRow(p2.decode(bytes.subarray(start, end)));
    const reader = compileWireReader(p2, fields, ref)!;
    expect(reader).not.toBeNull();
    const empty = new Uint8Array(0);
    expect(reader(empty, 0, 0)).toEqual(ref(empty, 0, 0));
    const one = p2.encode({ b: 1 }).finish();
    expect(reader(one, 0, one.length)).toEqual([1, "B", "d"]);
  });

  test("the format reads through it, whole records and ranges, length-delimited too", () => {
    const schema = `syntax = "proto3"; message Bid { int64 auction = 1; string channel = 2; optional string extra = 3; }`;
    const fields = [field("auction", t.bigint(), false), field("channel", t.string(), false), field("extra", t.string())];
    const bid = messageType(parseProtoSchema(schema), "Bid", "the test");
    for (const delimited of [false, true]) {
      const options = coerce(protobufFormat.options, { schema, length_delimited: String(delimited) });
      const de = protobufFormat.deserializer!({ options: options as any, fields });
      const w = delimited ? bid.encodeDelimited({ auction: 7, channel: "Apple" }) : bid.encode({ auction: 7, channel: "Apple" });
      const bytes = w.finish();
      expect(de.deserialize(bytes)).toEqual([7, "Apple", null]);
      expect(de.deserializeRange!(Uint8Array.of(1, ...bytes, 2), 1, 1 + bytes.length)).toEqual([7, "Apple", null]);
    }
    const de = protobufFormat.deserializer!({ options: coerce(protobufFormat.options, { schema, length_delimited: "true" }) as any, fields });
    expect(() => de.deserialize(Uint8Array.of(5, 8, 1))).toThrow("the length prefix says 5 bytes, the record holds 2");
  });
});
