/**
 * INSERT INTO a table whose declared column types differ from the query's:
 * lossless conversions are cast into the table's type (as Arroyo does), lossy
 * ones are refused naming the column and the CAST to write.
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { planSql, SqlError } from "../../../core/sql/index.ts";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { fixtureRegistry } from "../../kit/fixture-registry.ts";

setDefaultTimeout(60_000);
const registry = fixtureRegistry();

const SOURCE = `CREATE TABLE src (i INT, n BIGINT, x DOUBLE, f FLOAT, b BOOLEAN, ts TIMESTAMP, s TEXT)
WITH (connector = 'single_file', path = '/tmp/in.jsonl', format = 'json', type = 'source');
`;
const sink = (columns: string) => `CREATE TABLE out (${columns}) WITH (connector = 'single_file', path = '/tmp/out.jsonl', format = 'json', type = 'sink');\n`;

function refusal(sql: string): { message: string; line: number } {
  try {
    planSql(sql, registry);
  } catch (err) {
    if (!(err instanceof SqlError)) throw err;
    return { message: err.message, line: err.position(sql)?.line ?? 0 };
  }
  throw new Error("expected the INSERT to be refused");
}

describe("sink column types", () => {
  test("lossless conversions plan as casts into the table's types", () => {
    const accepted: [string, string][] = [
      ["v TEXT", "n"],
      ["v TEXT", "x"],
      ["v TEXT", "b"],
      ["v TEXT", "ts"],
      ["v BIGINT", "i"],
      ["v DOUBLE", "i"],
      ["v DOUBLE", "n"],
      ["v DOUBLE", "f"],
      ["v BIGINT UNSIGNED", "CAST(i AS INT UNSIGNED)"],
      ["v BIGINT", "CAST(n AS BIGINT UNSIGNED)"],
      ["v JSON", "s"],
    ];
    for (const [column, expr] of accepted) {
      const plan = planSql(SOURCE + sink(column) + `INSERT INTO out SELECT ${expr} FROM src;`, registry);
      expect(plan.sinks[0]!.input.schema.fields[0]!.type).toEqual(plan.tables.get("out")!.fields[0]!.type);
    }
  });

  test("lossy conversions are refused, naming the column and the CAST to write", () => {
    const refused: [string, string, string][] = [
      ["v INT", "n", "CAST(n AS INT)"],
      ["v BIGINT", "x", "CAST(x AS BIGINT)"],
      ["v FLOAT", "x", "CAST(x AS FLOAT)"],
      ["v BIGINT UNSIGNED", "n", "CAST(n AS BIGINT UNSIGNED)"],
      ["v INT", "CAST(n AS BIGINT UNSIGNED)", "AS INT)"],
      ["v BIGINT", "s", "CAST(s AS BIGINT)"],
      ["v TIMESTAMP", "s", "CAST(s AS TIMESTAMP)"],
      ["v BOOLEAN", "i", "CAST(i AS BOOLEAN)"],
    ];
    for (const [column, expr, hint] of refused) {
      const sql = SOURCE + sink(column) + `INSERT INTO out SELECT ${expr} FROM src;`;
      const r = refusal(sql);
      expect(r.message).toContain("column `v` of `out`");
      expect(r.message).toContain(hint);
      expect(r.line).toBe(4);
    }
  });

  test("end to end, the implicit cast into a sink writes what an explicit CAST gives", async () => {
    const dir = tempDir("runnel-sink-cast-");
    const input = join(dir, "in.jsonl");
    writeFileSync(
      input,
      [
        { i: 7, n: 42, x: 2.5, b: true, ts: "2024-02-29T12:34:56.789Z", s: "a" },
        { i: -3, n: -9007199254740991, x: -0.125, b: false, ts: "1999-12-31T23:59:59Z", s: "b" },
        { i: null, n: null, x: null, b: null, ts: null, s: null },
      ]
        .map((r) => JSON.stringify(r))
        .join("\n") + "\n",
    );
    const implicit = join(dir, "implicit.jsonl");
    const explicit = join(dir, "explicit.jsonl");
    const columns = "a TEXT, b TEXT, c TEXT, d TEXT, e BIGINT, f DOUBLE";
    const sql = `
CREATE TABLE src (i INT, n BIGINT, x DOUBLE, b BOOLEAN, ts TIMESTAMP, s TEXT) WITH (connector = 'single_file', path = '${input}', format = 'json', type = 'source');
CREATE TABLE implicit_out (${columns}) WITH (connector = 'single_file', path = '${implicit}', format = 'json', type = 'sink');
CREATE TABLE explicit_out (${columns}) WITH (connector = 'single_file', path = '${explicit}', format = 'json', type = 'sink');
INSERT INTO implicit_out SELECT n, x, b, ts, i, n FROM src;
INSERT INTO explicit_out SELECT CAST(n AS TEXT), CAST(x AS TEXT), CAST(b AS TEXT), CAST(ts AS TEXT), CAST(i AS BIGINT), CAST(n AS DOUBLE) FROM src;
`;
    const r = await runCli(["run", writeSql(dir, sql), "--quiet"]);
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const got = readFileSync(implicit, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(got.length).toBe(3);
    expect(got).toEqual(readFileSync(explicit, "utf8").trim().split("\n").map((l) => JSON.parse(l)));
    expect(got[0]).toMatchObject({ a: "42", e: 7, f: 42 });
    expect(got[1]).toMatchObject({ a: "-9007199254740991", e: -3, f: -9007199254740991 });
    expect(got[2]).toEqual({ a: null, b: null, c: null, d: null, e: null, f: null });
  });

  test("a checked cast stops the job on a value out of range rather than writing a wrapped one", async () => {
    const dir = tempDir("runnel-sink-cast-range-");
    const input = join(dir, "in.jsonl");
    writeFileSync(input, '{"n": 5}\n{"n": -1}\n');
    const sql = `
CREATE TABLE src (n BIGINT) WITH (connector = 'single_file', path = '${input}', format = 'json', type = 'source');
CREATE TABLE out (v BIGINT UNSIGNED) WITH (connector = 'single_file', path = '${join(dir, "out.jsonl")}', format = 'json', type = 'sink');
INSERT INTO out SELECT CAST(n AS BIGINT UNSIGNED) FROM src;
`;
    const r = await runCli(["run", writeSql(dir, sql), "--quiet"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("-1 is out of range for BIGINT UNSIGNED (project, on the row {n: -1})");
  });
});
