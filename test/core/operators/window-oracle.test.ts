/**
 * Window and aggregate semantics against an independent oracle: DuckDB computes
 * the same tumble, hop and session aggregates over the same input file, after
 * removing the records that arrive behind the watermark (the largest event time
 * seen so far minus 1 s), which the engine drops. Input is out of order, with
 * some records far too late.
 */
import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { duckQuery } from "../../kit/duckdb.ts";
import { normalizeRows, readJsonLines } from "../../kit/rows.ts";

// These tests run real processes; each file sets its own limit so it also runs alone.
setDefaultTimeout(180_000);

const S = 1_000_000;
let dir: string;
let input: string;

/** A deterministic PRNG so failures reproduce. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

beforeAll(() => {
  dir = tempDir("runnel-oracle-");
  input = join(dir, "events.jsonl");
  const rand = prng(42);
  const lines: string[] = [];
  let t = Date.UTC(2024, 0, 1) * 1000;
  for (let i = 0; i < 4000; i++) {
    t += Math.floor(rand() * 400_000); // ~5 events per second of event time
    let ts = t - Math.floor(rand() * 900_000); // out of order by up to 0.9 s: on time
    if (i % 97 === 5) ts = t - 5 * S - Math.floor(rand() * 20 * S); // far behind: late
    const user = `u${Math.floor(rand() * 7)}`;
    // A few users are bursty, so session gaps appear.
    if (user === "u6" && (i % 300) > 30) continue;
    lines.push(JSON.stringify({ user_id: user, value: Math.floor(rand() * 1000), ts: new Date(ts / 1000).toISOString(), seq: i }));
  }
  writeFileSync(input, lines.join("\n") + "\n");
});

const ORACLE_INPUT = () => `
  WITH raw AS (
    SELECT row_number() OVER () AS rn, user_id, value::BIGINT AS value, epoch_us(ts::TIMESTAMP) AS ts
    FROM read_json('${input}', format = 'newline_delimited', columns = {user_id: 'VARCHAR', value: 'BIGINT', ts: 'VARCHAR', seq: 'BIGINT'})
  ),
  marked AS (
    SELECT *, max(ts) OVER (ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - ${S} AS wm FROM raw
  ),
  events AS (SELECT user_id, value, ts FROM marked WHERE wm IS NULL OR ts >= wm)`;

async function runPipeline(query: string, name: string): Promise<Record<string, unknown>[]> {
  const out = join(dir, `${name}.jsonl`);
  const sql = `
CREATE TABLE events (
  user_id TEXT,
  value BIGINT,
  ts TIMESTAMP,
  WATERMARK FOR ts
) WITH (connector = 'single_file', path = '${input}', format = 'json', type = 'source');
CREATE TABLE results WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink',
  timestamp_format = 'unix_millis');
INSERT INTO results ${query};
`;
  const res = await runCli(["run", writeSql(dir, sql, `${name}.sql`), "--quiet"]);
  if (res.code !== 0) throw new Error(`runnel failed (${res.code}):\n${res.stderr}`);
  return readJsonLines(out);
}

const norm = normalizeRows;

describe("window aggregates agree with DuckDB", () => {
  test("tumble: count, sum, min, max, avg, count distinct per user and 10 s window", async () => {
    const ours = await runPipeline(
      `SELECT user_id, window.start AS window_start, window.end AS window_end, cnt, total, lo, hi, mean, users
       FROM (SELECT tumble(INTERVAL '10' SECOND) AS window, user_id, count(*) AS cnt, sum(value) AS total,
               min(value) AS lo, max(value) AS hi, avg(value) AS mean, count(DISTINCT value % 10) AS users
             FROM events GROUP BY window, user_id)`,
      "tumble",
    );
    const expected = await duckQuery(`${ORACLE_INPUT()}
      SELECT user_id, (ts // ${10 * S}) * ${10 * S} // 1000 AS window_start, ((ts // ${10 * S}) + 1) * ${10 * S} // 1000 AS window_end,
             count(*) AS cnt, sum(value) AS total, min(value) AS lo, max(value) AS hi, avg(value) AS mean,
             count(DISTINCT value % 10) AS users
      FROM events GROUP BY ALL`);
    expect(ours.length).toBeGreaterThan(50);
    expect(norm(ours)).toEqual(norm(expected));
  });

  test("hop: count per 4 s window sliding by 2 s", async () => {
    const ours = await runPipeline(
      `SELECT window.start AS window_start, n FROM (
         SELECT hop(INTERVAL '2' SECOND, INTERVAL '4' SECOND) AS window, count(*) AS n FROM events GROUP BY window)`,
      "hop",
    );
    const expected = await duckQuery(`${ORACLE_INPUT()},
      starts AS (SELECT unnest(generate_series((ts // ${2 * S}) * ${2 * S} - ${2 * S}, (ts // ${2 * S}) * ${2 * S}, ${2 * S})) AS ws FROM events)
      SELECT ws // 1000 AS window_start, count(*) AS n FROM starts GROUP BY ws`);
    expect(ours.length).toBeGreaterThan(100);
    expect(norm(ours)).toEqual(norm(expected));
  });

  test("session: per user with a 3 s gap", async () => {
    const ours = await runPipeline(
      `SELECT user_id, window.start AS window_start, window.end AS window_end, n, total FROM (
         SELECT session(INTERVAL '3' SECOND) AS window, user_id, count(*) AS n, sum(value) AS total
         FROM events GROUP BY window, user_id)`,
      "session",
    );
    const expected = await duckQuery(`${ORACLE_INPUT()},
      ordered AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY user_id ORDER BY ts) < ${3 * S} THEN 0 ELSE 1 END AS starts FROM events),
      numbered AS (SELECT *, sum(starts) OVER (PARTITION BY user_id ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM ordered)
      SELECT user_id, min(ts) // 1000 AS window_start, (max(ts) + ${3 * S}) // 1000 AS window_end, count(*) AS n, sum(value) AS total
      FROM numbered GROUP BY user_id, sid`);
    expect(ours.length).toBeGreaterThan(20);
    expect(norm(ours)).toEqual(norm(expected));
  });
});
