/**
 * The JSON scanner (flat records straight from bytes into column values)
 * against the path it replaces: UTF-8 text, JSON.parse, then the row decoder.
 * Every record, valid or not, must give the same row or the same error.
 */
import { describe, expect, test } from "bun:test";
import { field, t, type Field, type Row } from "../../../core/plugin-api/index.ts";
import { bytesReaderFor, compileRowDecoder, compileValuesDecoder, parseObject, utf8Text } from "../../../plugins/format-json/codec.ts";
import { json } from "../../../plugins/format-json/index.ts";
import { compileJsonScanner } from "../../../plugins/format-json/scan.ts";
import { coerce, outcome, seededRandom } from "../kit.ts";

const FIELDS: Field[] = [
  field("id", t.bigint(), false),
  field("user", t.string()),
  field("amount", t.double()),
  field("n", t.int()),
  field("ok", t.boolean()),
  field("t", t.timestamp()),
  field("j", t.json()),
  field("constructor", t.string()),
  field("", t.string()),
];

const toRow = compileRowDecoder(FIELDS, "rfc3339");
const parsed = (buf: Uint8Array, start: number, end: number) => toRow(parseObject(utf8Text(buf, start, end)));
let fallbacks = 0;
const scan = compileJsonScanner(
  FIELDS.map((f) => f.name),
  compileValuesDecoder(FIELDS, "rfc3339"),
  (buf, start, end) => (fallbacks++, parsed(buf, start, end)),
  FIELDS.map((f) => bytesReaderFor(f.type)),
)!;

const enc = new TextEncoder();

/** Checks one record in place (inside other bytes, so reading past its end would show) and alone. */
function same(bytes: Uint8Array): void {
  const buf = Uint8Array.of(0x7b, 0x30, ...bytes, 0x30, 0x2e, 0x65, 0x7d);
  const a = outcome(() => scan(buf, 2, 2 + bytes.length)) as { row?: Row; error?: string };
  const b = outcome(() => parsed(buf, 2, 2 + bytes.length)) as { row?: Row; error?: string };
  if (JSON.stringify(a) !== JSON.stringify(b) || !Object.is((a.row ?? [])[2], (b.row ?? [])[2])) {
    throw new Error(`differs on ${JSON.stringify(new TextDecoder().decode(bytes))}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`);
  }
}

describe("json scanner", () => {
  test("reads random flat and not-so-flat records exactly as JSON.parse and the row decoder do", () => {
    const next = seededRandom(600);
    const pick = <T,>(xs: T[]) => xs[Math.floor(next() * xs.length)]!;
    const numbers = ["0", "-0", "7", "-12", "123456789012345", "1234567890123456", "9007199254740993", "1.5", "-0.0", "1e3", "2E-2", "1.25e+2", "01", "1.", ".5", "-", "1e", "+1", "3000000000", "1.0"];
    const strings = ['""', '"x"', '"user-7"', '"é😀"', '"a\\"b"', '"\\u0041"', '"tab\there"', '"2024-01-01T00:00:00.123Z"', '"2024-01-01T00:00:00Z"', '"2024-02-30T00:00:00Z"', '"2023-12-31T23:59:59.999999999Z"', '"2024-01-01 10:00:00z"', '"2024-01-01T25:00:00Z"', '"2024-01-01T10:00:00+02:00"', '"noon"', '"\u007f"'];
    const values = () => pick([...numbers, ...strings, "true", "false", "null", "tru", "nul", "{}", '{"a":1}', "[1,2]", "[]"]);
    const keys = ['"id"', '"user"', '"amount"', '"n"', '"ok"', '"t"', '"j"', '"constructor"', '""', '"other"', '"\\u0069d"', '"é"', '"ID"', '"toString"'];
    const ws = () => pick(["", "", "", " ", "\n", "\t", "\r\n  "]);
    let handled = 0;
    for (let i = 0; i < 5000; i++) {
      const members = Array.from({ length: Math.floor(next() * 7) }, () => `${ws()}${pick(keys)}${ws()}:${ws()}${values()}${ws()}`);
      let text = `${ws()}{${members.join(",")}${ws()}}${ws()}`;
      const r = next();
      if (r < 0.05) text = text.slice(0, Math.floor(next() * text.length));
      else if (r < 0.1) text = text.replace(",", ",,");
      else if (r < 0.12) text = "[" + text + "]";
      else if (r < 0.14) text = text + "x";
      const before = fallbacks;
      same(enc.encode(text));
      if (fallbacks === before) handled++;
    }
    // The common records were read by the scanner, not handed to JSON.parse.
    expect(handled).toBeGreaterThan(1000);
  });

  test("bytes around the record are never read as part of it; malformed UTF-8, a BOM and control characters read as through TextDecoder", () => {
    for (const text of ['{"id": 1}', '{"id": 1', '{"id": 1}}', '{"id": -', '{"id": 0', '{"id": 1, "ok": tru', "", " ", "{", '{"id": 1, "user": "a']) same(enc.encode(text));
    same(Uint8Array.of(...enc.encode('{"id": 1, "user": "'), 0xff, 0xe2, 0x82, ...enc.encode('"}')));
    same(Uint8Array.of(0xef, 0xbb, 0xbf, ...enc.encode('{"id": 2}')));
    same(Uint8Array.of(...enc.encode('{"id": 3, "user": "a'), 0x01, ...enc.encode('"}')));
    same(Uint8Array.of(...enc.encode('{"id": 3, "'), 0xc3, 0xa9, ...enc.encode('": "x"}')));
  });

  test("the format reads records through it whole and in place", () => {
    const fields = [field("id", t.bigint(), false), field("user", t.string())];
    const de = json.deserializer!({ options: coerce(json.options, {}) as any, fields });
    const bytes = enc.encode('{"user":"u","id":5,"extra":[1,{"a":2}]}');
    expect(de.deserialize(bytes)).toEqual([5, "u"]);
    expect(de.deserializeRange!(Uint8Array.of(1, ...enc.encode('{"id":6}'), 2), 1, 9)).toEqual([6, null]);
    expect(() => de.deserialize(enc.encode('{"user":"u"}'))).toThrow("missing field `id`");
  });
});
