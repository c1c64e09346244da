/**
 * Window aggregates whose rows are pre-aggregated before the shuffle, across
 * two worker processes, through kill -9 of a worker at random moments: every
 * restore from the last checkpoint leaves tumble, hop and session results, and the
 * top key per hop window (through a local top-N), exactly DuckDB's (the combiner holds nothing across barriers, so nothing is lost or
 * counted twice).
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { startJob, tempDir, writeSql } from "../../kit/cli.ts";
import { duckQuery } from "../../kit/duckdb.ts";
import { normalizeRows, readJsonLines } from "../../kit/rows.ts";
import { killWorkersAtRandom, seeded } from "./kill-worker.ts";

setDefaultTimeout(240_000);

const EVENTS = 9000;
const START_US = Date.UTC(2024, 0, 1) * 1000;

/**
 * Per subtask, counters 0..EVENTS-1 at 10 ms of event time each. Each aggregate reads its own
 * source: a combiner chains only into a stage whose output it alone reads.
 */
const SOURCE = (name: string) =>
  `CREATE TABLE ${name} WITH (connector = 'impulse', event_rate = '3000', message_count = '${EVENTS}', event_time_interval = '10ms', start_time = '2024-01-01T00:00:00Z');`;
const PIPELINE = (dir: string) => `
${SOURCE("impulse")}
${SOURCE("impulse2")}
${SOURCE("impulse3")}
${SOURCE("impulse4")}
CREATE TABLE tumbles WITH (connector = 'single_file', path = '${join(dir, "tumbles.jsonl")}', format = 'json', type = 'sink', overwrite = 'true', timestamp_format = 'unix_millis');
CREATE TABLE tops WITH (connector = 'single_file', path = '${join(dir, "tops.jsonl")}', format = 'json', type = 'sink', overwrite = 'true', timestamp_format = 'unix_millis');
CREATE TABLE hops WITH (connector = 'single_file', path = '${join(dir, "hops.jsonl")}', format = 'json', type = 'sink', overwrite = 'true', timestamp_format = 'unix_millis');
INSERT INTO tumbles SELECT k, window.start AS ws, n, total, lo, hi, mean FROM (
  SELECT counter % 7 AS k, tumble(INTERVAL '1' SECOND) AS window, count(*) AS n, sum(counter) AS total,
         min(counter) AS lo, max(counter) AS hi, avg(counter) AS mean FROM impulse GROUP BY k, window);
INSERT INTO hops SELECT k, window.start AS ws, n FROM (
  SELECT counter % 7 AS k, hop(INTERVAL '1' SECOND, INTERVAL '3' SECOND) AS window, count(*) AS n FROM impulse2 GROUP BY k, window);
CREATE TABLE sessions WITH (connector = 'single_file', path = '${join(dir, "sessions.jsonl")}', format = 'json', type = 'sink', overwrite = 'true', timestamp_format = 'unix_millis');
INSERT INTO sessions SELECT k, window.start AS ws, window.end AS we, n, total FROM (
  SELECT counter % 7 AS k, session(INTERVAL '100' MILLISECOND) AS window, count(*) AS n, sum(counter) AS total FROM impulse4
  WHERE counter % 100 < 70 GROUP BY k, window);
INSERT INTO tops SELECT k, ws, n FROM (
  SELECT k, window.start AS ws, n, rank() OVER (PARTITION BY window ORDER BY n DESC) AS r FROM (
    SELECT counter % 7 AS k, hop(INTERVAL '1' SECOND, INTERVAL '3' SECOND) AS window, count(*) AS n FROM impulse3 GROUP BY k, window))
  WHERE r <= 1;
`;

const EVENTS_SQL = `WITH events AS (SELECT c AS counter, c % 7 AS k, ${START_US} + c * 10000 AS ts FROM range(${EVENTS}) r(c), range(2) s(subtask))`;

describe("combined window aggregates across worker processes", () => {
  test("kill -9 of a worker at random moments: tumble, hop, session and top-1 per window equal DuckDB's", async () => {
    const dir = tempDir("runnel-combine-kill-");
    const job = startJob([writeSql(dir, PIPELINE(dir)), "--parallelism", "2", "--workers", "2", "--state-dir", join(dir, "state"), "--checkpoint-interval", "200ms"]);
    const killed = await killWorkersAtRandom({ job, stateDir: join(dir, "state"), workers: 2, kills: 2, random: seeded(5) });
    expect(await job.proc.exited).toBe(0);
    expect(killed.length).toBeGreaterThan(0);
    expect(job.stderr().match(/hash shuffle on group key, partials/g)?.length).toBe(4);
    expect(job.stderr()).toContain("hash shuffle on group key, local top-N");
    const restores = job.stderr().match(/restoring the job from its last checkpoint/g)?.length ?? 0;
    expect(restores).toBeGreaterThanOrEqual(1);

    const tumbles = await duckQuery(`${EVENTS_SQL}
      SELECT k, (ts // 1000000) * 1000 AS ws, count(*) AS n, sum(counter) AS total, min(counter) AS lo, max(counter) AS hi, avg(counter) AS mean
      FROM events GROUP BY ALL`);
    const hopsSql = `${EVENTS_SQL},
      starts AS (SELECT k, unnest(generate_series((ts // 1000000) * 1000000 - 2000000, (ts // 1000000) * 1000000, 1000000)) AS ws FROM events)
      SELECT k, ws // 1000 AS ws, count(*) AS n FROM starts GROUP BY ALL`;
    const hops = await duckQuery(hopsSql);
    expect(tumbles.length).toBeGreaterThan(600);
    expect(normalizeRows(readJsonLines(join(dir, "tumbles.jsonl")))).toEqual(normalizeRows(tumbles));
    expect(normalizeRows(readJsonLines(join(dir, "hops.jsonl")))).toEqual(normalizeRows(hops));
    const tops = await duckQuery(`WITH h AS (${hopsSql}) SELECT k, ws, n FROM (SELECT *, rank() OVER (PARTITION BY ws ORDER BY n DESC) AS r FROM h) WHERE r <= 1`);
    expect(tops.length).toBeGreaterThan(90);
    expect(normalizeRows(readJsonLines(join(dir, "tops.jsonl")))).toEqual(normalizeRows(tops));
    // Each key pauses 300 ms every second (counters 70..99 of each hundred filtered out): sessions of 100 ms gap close there.
    const sessions = await duckQuery(`${EVENTS_SQL},
      marked AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY k ORDER BY ts) < 100000 THEN 0 ELSE 1 END AS fresh FROM events WHERE counter % 100 < 70),
      numbered AS (SELECT *, sum(fresh) OVER (PARTITION BY k ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM marked)
      SELECT k, min(ts) // 1000 AS ws, (max(ts) + 100000) // 1000 AS we, count(*) AS n, sum(counter) AS total FROM numbered GROUP BY k, sid`);
    expect(sessions.length).toBeGreaterThan(500);
    expect(normalizeRows(readJsonLines(join(dir, "sessions.jsonl")))).toEqual(normalizeRows(sessions));
  });
});
