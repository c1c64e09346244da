/**
 * Writing CSV: rows serialized by format 'csv' read back unchanged by its own
 * reader (and by DuckDB, in test/plugins/connector-filesystem/encoders.test.ts),
 * whatever the values hold; a record sink writes one row a line without a
 * header; columns CSV has no exact text for are refused when planning.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { csv } from "../../../plugins/format-csv/index.ts";
import { field, t, type Field, type Row } from "../../../core/plugin-api/index.ts";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";

setDefaultTimeout(60_000);

const FIELDS: Field[] = [
  field("s", t.string()),
  field("n", t.bigint()),
  field("f", t.double()),
  field("ts", t.timestamp()),
  field("b", t.boolean()),
  field("j", t.json()),
  field("iv", t.interval()),
];

const ROWS: Row[] = [
  ['he said "hi", then left', -9007199254740991, -0.5, Date.UTC(2024, 0, 1, 12, 0, 0) * 1000 + 123456, true, '{"a": [1, "x,y"]}', 90_000_000],
  ["line one\nline two\r\nthree", 9007199254740991, 1e21, -86_400_000_000 + 1, false, "null", -1],
  ["", 0, 0.1 + 0.2, 0, true, "[]", 0],
  [null, null, null, null, null, null, null],
  ["ünïcødé ✓ 日本語 🎉", 42, Infinity, Date.UTC(1999, 11, 31, 23, 59, 59) * 1000, false, '"text"', 1],
  ["; ' \\ tab\there", -1, -Infinity, Date.UTC(2038, 0, 19) * 1000 + 1000, true, "{}", 2],
  [" leading and trailing ", 1, NaN, 1, false, "1", 3],
];

function roundTrip(options: Record<string, unknown>, rows: Row[]): { lines: string[]; back: Row[] } {
  const o = { delimiter: ",", quote: '"', escape: '"', ...options };
  const writer = csv.serializer!({ options: o as never, fields: FIELDS });
  const reader = csv.deserializer!({ options: o as never, fields: FIELDS });
  const lines = rows.map((r) => writer.serialize(r) as string);
  return { lines, back: lines.map((l) => reader.deserialize(l)!) };
}

describe("format 'csv' writing", () => {
  test("every row reads back unchanged through the CSV reader: quotes, delimiters, line breaks, NULL vs empty, unicode, extreme numbers, timestamps", () => {
    const { lines, back } = roundTrip({}, ROWS);
    expect(back).toEqual(ROWS);
    // RFC 4180 quoting, and NULL as an empty unquoted field next to "" for the empty string.
    expect(lines[0]).toBe(`"he said ""hi"", then left",-9007199254740991,-0.5,2024-01-01T12:00:00.123456Z,true,"{""a"": [1, ""x,y""]}",90000000`);
    expect(lines[2]).toBe(`"",0,0.30000000000000004,1970-01-01T00:00:00Z,true,[],0`);
    expect(lines[3]).toBe(",,,,,,");
  });

  test("another delimiter, quote and escape character: fields holding them are quoted and escaped, and read back", () => {
    const { lines, back } = roundTrip({ delimiter: ";", quote: "'", escape: "\\" }, ROWS);
    expect(back).toEqual(ROWS);
    expect(lines[5]).toBe(`'; \\' \\\\ tab\there';-1;-Infinity;2038-01-19T00:00:00.001Z;true;{};2`);
  });

  test("a tab delimiter, and a delimiter that numbers use (.), still read back", () => {
    expect(roundTrip({ delimiter: "\t" }, ROWS).back).toEqual(ROWS);
    const dot = roundTrip({ delimiter: "." }, ROWS);
    expect(dot.back).toEqual(ROWS);
    expect(dot.lines[0]).toContain(`."-0.5".`);
  });

  test("the byte encoder file sinks use (encodeInto) writes exactly the UTF-8 of serialize's line, for every value and option set", () => {
    const edges: Row[] = [
      ["x".repeat(24), 2147483647, 2147483648, -1, false, "0", -2147483648],
      ["y".repeat(25) + ",", -2147483648, -2147483649, 1e15 * 9, true, "[1.5]", 2147483648],
      ["ünï", 9007199254740991, 1.5, -1_000_000, true, "{}", -1],
      ["a long text that has no special character but is ünïcødé 🎉 all the same", 0, -0, 999_999, false, '{"k": "v"}', 0],
      ['a long text with a "quote", a comma and a\nline break in it', -5, 1e-7, -999_999, true, "1e3", 5],
    ];
    for (const options of [{}, { delimiter: ";", quote: "'", escape: "\\" }, { delimiter: "\t" }, { delimiter: "|", quote: "~" }]) {
      const o = { delimiter: ",", quote: '"', escape: '"', ...options };
      const writer = csv.serializer!({ options: o as never, fields: FIELDS });
      expect(writer.encodeInto).toBeDefined();
      const sink = { bytes: new Uint8Array(8), length: 0, reserve(n: number) {
        if (this.length + n > this.bytes.length) {
          const grown = new Uint8Array(this.length + n);
          grown.set(this.bytes.subarray(0, this.length));
          this.bytes = grown;
        }
        return this.bytes;
      } };
      for (const row of [...ROWS, ...edges]) {
        sink.length = 0;
        writer.encodeInto!(row, sink);
        expect(new TextDecoder().decode(sink.bytes.subarray(0, sink.length))).toBe(writer.serialize(row) as string);
      }
    }
    // A delimiter that numbers print (.) leaves the byte encoder out: the sink uses serialize.
    expect(csv.serializer!({ options: { delimiter: ".", quote: '"', escape: '"' } as never, fields: FIELDS }).encodeInto).toBeUndefined();
  });

  test("records (not files) get no header: a single_file sink writes one row a line", async () => {
    const dir = tempDir("runnel-csv-records-");
    const input = join(dir, "in.jsonl");
    writeFileSync(input, ['{"id": 1, "name": "a,b"}', '{"id": 2, "name": null}'].join("\n") + "\n");
    const out = join(dir, "out.csv");
    const sql = writeSql(
      dir,
      `CREATE TABLE src (id BIGINT, name TEXT) WITH (connector = 'single_file', path = '${input}', type = 'source', format = 'json');
CREATE TABLE dst (id BIGINT, name TEXT) WITH (connector = 'single_file', path = '${out}', type = 'sink', format = 'csv');
INSERT INTO dst SELECT id, name FROM src;`,
    );
    const r = await runCli(["run", sql, "--quiet"]);
    expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(readFileSync(out, "utf8")).toBe(`1,"a,b"\n2,\n`);
  });

  test("columns without an exact CSV text (BYTEA, arrays, structs, maps) are refused when planning, naming the column and what to write", async () => {
    const dir = tempDir("runnel-csv-refused-");
    const validate = async (columns: string) => {
      const sql = `CREATE TABLE src (${columns}) WITH (connector = 'single_file', path = '${dir}/in.jsonl', type = 'source', format = 'json');
CREATE TABLE dst (${columns}) WITH (connector = 'filesystem', path = '${dir}/out', type = 'sink', format = 'csv');
INSERT INTO dst SELECT * FROM src;`;
      const r = await runCli(["validate", writeSql(dir, sql, `v${Math.random()}.sql`)]);
      return { code: r.code, stderr: r.stderr };
    };
    const bytes = await validate("id BIGINT, payload BYTEA");
    expect(bytes.code).toBe(2);
    expect(bytes.stderr).toContain("format 'csv' has no exact text for some columns: column 'payload' is BYTEA");
    expect(bytes.stderr).toContain("encode(payload, 'base64')");
    const nested = await validate("tags TEXT[], point STRUCT<x BIGINT, y BIGINT>");
    expect(nested.code).toBe(2);
    expect(nested.stderr).toContain("column 'tags' is TEXT[]");
    expect(nested.stderr).toContain("column 'point' is STRUCT<x BIGINT, y BIGINT>");
    expect(nested.stderr).toContain("format 'json' or 'parquet'");
  });
});
