/**
 * `agg(...) FILTER (WHERE ...)` on windowed and updating aggregates, and over an
 * updating input (retractions), against DuckDB on the same rows.
 */
import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { duckQuery } from "../../kit/duckdb.ts";
import { foldChanges, normalizeRows, readJsonLines } from "../../kit/rows.ts";

setDefaultTimeout(60_000);

let dir: string;
let input: string;

beforeAll(() => {
  dir = tempDir("runnel-agg-filter-");
  input = join(dir, "events.jsonl");
  const lines: string[] = [];
  const start = Date.UTC(2024, 0, 1);
  for (let i = 0; i < 3000; i++) {
    const v = (i * 7919) % 101;
    lines.push(JSON.stringify({ k: `k${i % 13}`, v: i % 17 === 0 ? null : v, ts: new Date(start + i * 20).toISOString() }));
  }
  writeFileSync(input, lines.join("\n") + "\n");
});

const DUCK_EVENTS = () =>
  `WITH events AS (SELECT k, v, epoch_us(ts::TIMESTAMP) AS ts FROM read_json('${input}', format = 'newline_delimited', columns = {k: 'VARCHAR', v: 'BIGINT', ts: 'VARCHAR'}))`;

async function run(query: string, name: string): Promise<Record<string, any>[]> {
  const out = join(dir, `${name}.jsonl`);
  const sql = `
CREATE TABLE events (k TEXT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts AS ts) WITH (connector = 'single_file', path = '${input}', format = 'json', type = 'source');
CREATE TABLE results WITH (connector = 'single_file', path = '${out}', format = '${name.startsWith("updating") ? "debezium_json" : "json"}', type = 'sink', timestamp_format = 'unix_millis');
INSERT INTO results ${query};
`;
  const r = await runCli(["run", writeSql(dir, sql, `${name}.sql`), "--quiet", "--parallelism", "2"]);
  if (r.code !== 0) throw new Error(`runnel failed (${r.code}):\n${r.stderr}`);
  return readJsonLines(out);
}

describe("aggregate FILTER (WHERE ...)", () => {
  test("windowed: count(*), count, sum, min, max, avg and count(DISTINCT) with filters", async () => {
    const ours = await run(
      `SELECT k, window.start AS ws, all_rows, big, big_sum, small_min, odd_max, mid_avg, distinct_big FROM (
         SELECT tumble(INTERVAL '5' SECOND) AS window, k, count(*) AS all_rows,
           count(*) FILTER (WHERE v > 50) AS big, sum(v) FILTER (WHERE v > 50) AS big_sum,
           min(v) FILTER (WHERE v < 20) AS small_min, max(v) FILTER (WHERE v % 2 = 1) AS odd_max,
           avg(v) FILTER (WHERE v BETWEEN 30 AND 60) AS mid_avg, count(DISTINCT v % 10) FILTER (WHERE v > 50) AS distinct_big
         FROM events GROUP BY window, k)`,
      "windowed",
    );
    const expected = await duckQuery(`${DUCK_EVENTS()}
      SELECT k, (ts // 5000000) * 5000 AS ws, count(*) AS all_rows,
        count(*) FILTER (WHERE v > 50) AS big, sum(v) FILTER (WHERE v > 50) AS big_sum,
        min(v) FILTER (WHERE v < 20) AS small_min, max(v) FILTER (WHERE v % 2 = 1) AS odd_max,
        avg(v) FILTER (WHERE v BETWEEN 30 AND 60) AS mid_avg, count(DISTINCT v % 10) FILTER (WHERE v > 50) AS distinct_big
      FROM events GROUP BY ALL`);
    expect(ours.length).toBe(13 * 12);
    expect(normalizeRows(ours)).toEqual(normalizeRows(expected));
  });

  test("updating: per key, and over an updating input whose retractions must pass the same filter", async () => {
    const perKey = foldChanges(
      (await run(`SELECT k, count(*) FILTER (WHERE v > 50) AS big, sum(v) FILTER (WHERE v <= 50) AS small FROM events GROUP BY k`, "updating-key")) as any,
    );
    const expectedPerKey = await duckQuery(`${DUCK_EVENTS()}
      SELECT k, count(*) FILTER (WHERE v > 50) AS big, sum(v) FILTER (WHERE v <= 50) AS small FROM events GROUP BY k`);
    expect(normalizeRows(perKey)).toEqual(normalizeRows(expectedPerKey));

    // The inner aggregate's updates retract earlier counts; the outer FILTER must see the retracted value, not the new one.
    const overUpdates = foldChanges(
      (await run(
        `SELECT count(*) FILTER (WHERE n % 2 = 0) AS even_groups, sum(n) FILTER (WHERE n > 230) AS big_total, max(n) FILTER (WHERE n < 231) AS small_max
         FROM (SELECT k, count(*) AS n FROM events GROUP BY k)`,
        "updating-nested",
      )) as any,
    );
    const expectedNested = await duckQuery(`${DUCK_EVENTS()}
      SELECT count(*) FILTER (WHERE n % 2 = 0) AS even_groups, sum(n) FILTER (WHERE n > 230) AS big_total, max(n) FILTER (WHERE n < 231) AS small_max
      FROM (SELECT k, count(*) AS n FROM events GROUP BY k)`);
    expect(normalizeRows(overUpdates)).toEqual(normalizeRows(expectedNested));
  });

  test("a FILTER that is not boolean is refused at its position", async () => {
    const r = await runCli(["validate", writeSql(dir, `CREATE TABLE events (k TEXT, v BIGINT) WITH (connector = 'single_file', path = '${input}', format = 'json', type = 'source');
SELECT count(*) FILTER (WHERE v + 1) FROM events GROUP BY k;`, "bad.sql")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("FILTER (WHERE ...) of count() needs a boolean condition, got BIGINT");
    expect(r.stderr).toContain("line 2, column 31");
  });
});
