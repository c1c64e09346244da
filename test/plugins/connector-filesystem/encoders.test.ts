/**
 * CSV files from the filesystem sink, read back by DuckDB (read_csv, which
 * shares no code with Runnel) and by Runnel's own CSV reader, and compared
 * with the input rows by DuckDB: awkward text (quotes, delimiters, CR/LF,
 * unicode, NULL next to the empty string), extreme numbers and timestamps,
 * files rolled by size and partitioned by a column (gzip), each with its header.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { duckQuery } from "../../kit/duckdb.ts";
import { filesUnder } from "./readback.ts";

setDefaultTimeout(120_000);

const ROWS = 40_000;
const COLUMNS = "id BIGINT, k TEXT, s TEXT, n BIGINT, f DOUBLE, ts TIMESTAMP, ok BOOLEAN";
const HEADER = "id,k,s,n,f,ts,ok";
const DUCK_COLUMNS = "{id: 'BIGINT', k: 'VARCHAR', s: 'VARCHAR', n: 'BIGINT', f: 'DOUBLE', ts: 'TIMESTAMPTZ', ok: 'BOOLEAN'}";
const TEXTS = ['he said "hi", then left', "line one\nline two\r\nthree\r", "", null, "ünïcødé ✓ 日本語 🎉", "a,b,,c", '"', " padded ", "plain"];
const NUMBERS = [-9007199254740991, 9007199254740991, 0, -1, 123456789012345, null];
const FLOATS = [-0.5, 1e21, 0.1 + 0.2, -1.7976931348623157e308, 5e-324, 3, null];

let dir: string;
let input: string;

beforeAll(() => {
  dir = tempDir("runnel-fs-csv-");
  input = join(dir, "input.jsonl");
  const lines: string[] = [];
  for (let i = 0; i < ROWS; i++) {
    // Microseconds, before and after 1970, some on whole seconds.
    const us = (i % 5 === 0 ? -1 : 1) * (1_700_000_000_000_000 + i * 1_000_003) - (i % 7 === 0 ? (i % 1_000_000) * 1_000_000 : 0);
    lines.push(
      JSON.stringify({
        id: i,
        k: ["x", "y", "z"][i % 3],
        s: TEXTS[i % TEXTS.length],
        n: NUMBERS[i % NUMBERS.length],
        f: FLOATS[i % FLOATS.length],
        ts: i % 11 === 0 ? null : new Date(Math.floor(us / 1000)).toISOString().replace("Z", String(((us % 1000) + 1000) % 1000).padStart(3, "0") + "Z"),
        ok: i % 13 === 0 ? null : i % 2 === 0,
      }),
    );
  }
  writeFileSync(input, lines.join("\n") + "\n");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let runs = 0;
async function run(sql: string) {
  const name = `run-${runs++}`;
  const r = await runCli(["run", writeSql(dir, sql, `${name}.sql`), "--state-dir", join(dir, `${name}-state`), "--checkpoint-interval", "100ms", "--quiet"], { timeoutMs: 100_000 });
  expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, stderr: "" });
}

/** Copies the input rows into a filesystem CSV sink with these extra options; returns the files written. */
async function writeCsv(name: string, sinkOptions: string): Promise<string[]> {
  const out = join(dir, name);
  await run(`CREATE TABLE src (${COLUMNS}) WITH (connector = 'single_file', path = '${input}', type = 'source', format = 'json');
CREATE TABLE dst (${COLUMNS}) WITH (connector = 'filesystem', path = '${out}', type = 'sink', format = 'csv'${sinkOptions});
INSERT INTO dst SELECT * FROM src;`);
  return filesUnder(out);
}

const list = (files: string[]) => `[${files.map((f) => `'${f}'`).join(", ")}]`;
const INPUT = () => `(SELECT * FROM read_json('${input}', format = 'newline_delimited', columns = ${DUCK_COLUMNS}))`;

/** Rows in one query and not the other (EXCEPT ALL both ways, NULLs equal), and the row count of the first. */
async function difference(actual: string, expected: string) {
  const [r] = await duckQuery(`
    WITH a AS ${actual}, e AS ${expected}
    SELECT (SELECT count(*) FROM (SELECT * FROM e EXCEPT ALL SELECT * FROM a)) AS missing,
           (SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM e)) AS extra,
           (SELECT count(*) FROM a) AS rows`);
  return { missing: Number(r!.missing), extra: Number(r!.extra), rows: Number(r!.rows) };
}

describe("filesystem sink writing CSV", () => {
  test("files rolled by size each start with the header; DuckDB's read_csv and Runnel's CSV reader read back exactly the input rows", async () => {
    const files = await writeCsv("rolled", `, 'rolling_policy.file_size' = '100KB'`);
    expect(files.length).toBeGreaterThan(1);
    for (const f of files) {
      expect(basename(f)).toMatch(/^[0-9a-z]{13}-0-\d+\.csv$/);
      expect(readFileSync(f, "utf8").split("\n", 1)[0]).toBe(HEADER);
    }
    // "" is the empty string, an empty unquoted field NULL (DuckDB reads "" as NULL unless told otherwise).
    const duck = `(SELECT * FROM read_csv(${list(files)}, header = true, allow_quoted_nulls = false, columns = ${DUCK_COLUMNS}))`;
    expect(await difference(duck, INPUT())).toEqual({ missing: 0, extra: 0, rows: ROWS });
    const [spot] = await duckQuery(`SELECT s, n, f, epoch_us(ts) AS ts FROM ${duck} WHERE id = 1`);
    expect(spot).toEqual({ s: TEXTS[1], n: BigInt(NUMBERS[1]!), f: FLOATS[1], ts: 1_700_000_001_000_003n });

    const back = join(dir, "rolled-back.jsonl");
    await run(`CREATE TABLE src (${COLUMNS}) WITH (connector = 'filesystem', path = '${join(dir, "rolled")}', type = 'source', format = 'csv');
CREATE TABLE back (${COLUMNS}) WITH (connector = 'single_file', path = '${back}', type = 'sink', format = 'json');
INSERT INTO back SELECT * FROM src;`);
    const runnel = `(SELECT * FROM read_json('${back}', format = 'newline_delimited', columns = ${DUCK_COLUMNS}))`;
    expect(await difference(runnel, INPUT())).toEqual({ missing: 0, extra: 0, rows: ROWS });
  });

  test("partitioned by a column and gzip-compressed: one header per partition file, and DuckDB reads the directories with hive partitioning", async () => {
    const files = await writeCsv("partitioned", `, 'partitioning.fields' = 'k', 'rolling_policy.file_size' = '10KB', compression = 'gzip'`);
    expect(new Set(files.map((f) => basename(join(f, ".."))))).toEqual(new Set(["k=x", "k=y", "k=z"]));
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) {
      expect(basename(f)).toMatch(/\.csv\.gz$/);
      expect(new TextDecoder().decode(Bun.gunzipSync(readFileSync(f))).split("\n", 1)[0]).toBe(HEADER);
    }
    // The partition value from the path must agree with the column in the file.
    const duck = `(SELECT id, k, s, n, f, ts, ok FROM read_csv('${join(dir, "partitioned")}/*/*.csv.gz', hive_partitioning = true, header = true, allow_quoted_nulls = false,
      columns = ${DUCK_COLUMNS.replace("k: 'VARCHAR'", "k_in_file: 'VARCHAR'")}) WHERE k = k_in_file)`;
    expect(await difference(duck, INPUT())).toEqual({ missing: 0, extra: 0, rows: ROWS });
  });
});
