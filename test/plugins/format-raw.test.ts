/**
 * raw_string and raw_bytes: one column `value`, through single_file end to
 * end, and the planning errors for tables that do not fit them.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../kit/cli.ts";
import { rawBytes, rawString } from "../../plugins/format-raw/index.ts";
import { t } from "../../core/plugin-api/index.ts";

// Each test runs the CLI a few times; on a loaded machine a run takes seconds.
setDefaultTimeout(60_000);

describe("raw formats", () => {
  test("raw_string copies each line through a query unchanged, whatever it holds", async () => {
    const dir = tempDir("runnel-raw-");
    const input = join(dir, "in.txt");
    const text = ["plain", "{\"not\": \"parsed\"}", "ünïcødé ✓", "a,b,c"];
    writeFileSync(input, text.join("\n") + "\n");
    const out = join(dir, "out.txt");
    const sql = writeSql(
      dir,
      `CREATE TABLE src (value TEXT) WITH (connector = 'single_file', path = '${input}', type = 'source', format = 'raw_string');
CREATE TABLE dst WITH (connector = 'single_file', path = '${out}', type = 'sink', format = 'raw_string');
INSERT INTO dst SELECT concat(value, '!') AS value FROM src;`,
    );
    const r = await runCli(["run", sql, "--quiet"]);
    expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, stderr: "" });
    expect(readFileSync(out, "utf8")).toBe(text.map((l) => `${l}!`).join("\n") + "\n");
  });

  test("raw_bytes keeps the bytes; raw_string refuses bytes that are not UTF-8", () => {
    const fields = [{ name: "value", type: t.bytes(), nullable: true }];
    const bytes = Uint8Array.of(0, 255, 10, 128);
    const row = rawBytes.deserializer!({ options: {}, fields }).deserialize(bytes)!;
    expect([...(row[0] as Uint8Array)]).toEqual([0, 255, 10, 128]);
    expect(rawBytes.serializer!({ options: {}, fields }).serialize(row)).toEqual(row[0] as Uint8Array);
    const text = rawString.deserializer!({ options: {}, fields: [{ name: "value", type: t.string(), nullable: true }] });
    expect(() => text.deserialize(bytes)).toThrow("not valid UTF-8; read it with format 'raw_bytes'");
  });

  test("a table with other columns, or a value of the wrong type, is refused when planning", async () => {
    const dir = tempDir("runnel-raw-errors-");
    const one = await runCli(["validate", writeSql(dir, `CREATE TABLE s (value TEXT, n BIGINT) WITH (connector = 'single_file', path = '/tmp/x', type = 'source', format = 'raw_string');\nSELECT * FROM s;`, "a.sql")]);
    expect(one.code).toBe(2);
    expect(one.stderr).toContain("format 'raw_string' reads and writes one column `value` of type TEXT; the table also has `n`");
    const two = await runCli(["validate", writeSql(dir, `CREATE TABLE s (value TEXT) WITH (connector = 'single_file', path = '/tmp/x', type = 'source', format = 'raw_bytes');\nSELECT * FROM s;`, "b.sql")]);
    expect(two.code).toBe(2);
    expect(two.stderr).toContain("column `value` is TEXT; declare it BYTEA");
  });
});
