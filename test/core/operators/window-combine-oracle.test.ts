/**
 * Tumble and hop aggregates at parallelism 2, where a combiner pre-aggregates
 * before the shuffle, against DuckDB over the same bounded input (out of
 * order, some rows far behind the watermark): same windows, and the same rows
 * counted late as the oracle drops and as the plan without the combiner. A
 * checkpoint taken without the combiner restores with it, and back: the
 * aggregate's state is the same either way.
 */
import { describe, expect, test } from "bun:test";
import { Job } from "../../../core/dataflow/job.ts";
import { definePlugin, t, type Row } from "../../../core/plugin-api/index.ts";
import { planSql } from "../../../core/sql/index.ts";
import { tempDir, waitUntil } from "../../kit/cli.ts";
import { duckQuery } from "../../kit/duckdb.ts";
import { BID_COLUMNS, duckSql, prng, runnelTables, runSql, sameRows, testRegistry, type TableSpec } from "../../kit/sql.ts";

const S = 1_000_000;

function bids(): TableSpec {
  const rand = prng(7);
  const rows: unknown[][] = [];
  let t = Date.UTC(2024, 0, 1) * 1000;
  for (let id = 0; id < 3000; id++) {
    t += Math.floor(rand() * 20_000);
    let ts = t - Math.floor(rand() * 900_000); // out of order within the 1 s watermark delay: on time
    if (id % 89 === 7) ts = t - 3 * S - Math.floor(rand() * 10 * S); // far behind: late
    // As in Nexmark, half the bids go to one hot auction.
    const auction = rand() < 0.5 ? 1 : 2 + Math.floor(rand() * 60);
    rows.push([id, auction, Math.floor(rand() * 100), Math.floor(rand() * 1000), ts]);
  }
  return { name: "bids", columns: BID_COLUMNS, rows, watermark: "ts", batch: 250 };
}

/** Rows the aggregate keeps: not behind the largest earlier event time minus 1 s (the default watermark). */
const ON_TIME = `WITH numbered AS (SELECT *, row_number() OVER () AS rn FROM bids),
  marked AS (SELECT *, max(ts) OVER (ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - ${S} AS wm FROM numbered),
  events AS (SELECT * FROM marked WHERE wm IS NULL OR ts >= wm)`;

interface Counts {
  late: number;
  combinedIn: number;
  combinedOut: number;
}

async function run(table: TableSpec, query: string, combine: boolean) {
  let job: Job | null = null;
  const result = await runSql(`${runnelTables([table])}\n${query};`, { parallelism: 2, combine, onJob: (j) => (job = j) });
  const ops = (job as Job | null)!.metrics.operators;
  const sum = (kind: string, pick: (m: (typeof ops)[number]) => number) => ops.filter((m) => m.operatorId.endsWith(kind)).reduce((n, m) => n + pick(m), 0);
  const counts: Counts = {
    late: sum("-window_aggregate", (m) => m.lateDropped),
    combinedIn: sum("-window_combine", (m) => m.recordsIn),
    combinedOut: sum("-window_combine", (m) => m.recordsOut),
  };
  return { rows: result.rows, counts };
}

describe("window aggregates with a combiner before the shuffle (parallelism 2) agree with DuckDB", () => {
  const table = bids();

  test("tumble: count, sum, min, max, avg and a FILTER per auction and 2 s window", async () => {
    const query = `SELECT auction, window.start AS ws, n, total, lo, hi, mean, big FROM (
      SELECT auction, tumble(INTERVAL '2' SECOND) AS window, count(*) AS n, sum(price) AS total, min(price) AS lo,
             max(price) AS hi, avg(price) AS mean, count(*) FILTER (WHERE price > 500) AS big
      FROM bids GROUP BY auction, window)`;
    const ours = await run(table, query, true);
    const expected = await duckSql([table], `${ON_TIME}
      SELECT auction, (ts // ${2 * S}) * ${2 * S} AS ws, count(*) AS n, sum(price) AS total, min(price) AS lo, max(price) AS hi,
             avg(price) AS mean, count(*) FILTER (WHERE price > 500) AS big
      FROM events GROUP BY ALL`);
    expect(ours.rows.length).toBeGreaterThan(500);
    expect(sameRows(ours.rows, expected)).toBeNull();
    const [lateRows] = await duckSql([table], `${ON_TIME} SELECT count(*) AS n FROM marked WHERE ts < wm`);
    expect(lateRows!.n).toBeGreaterThan(10);
    expect(ours.counts.late).toBe(lateRows!.n as number);
    // The combiner ran and cut the rows crossing the shuffle.
    expect(ours.counts.combinedIn).toBe(3000);
    expect(ours.counts.combinedOut).toBeLessThan(3000 / 2);
    // Without it: the same rows, the same late count.
    const plain = await run(table, query, false);
    expect(plain.counts.combinedIn).toBe(0);
    expect(plain.counts.late).toBe(ours.counts.late);
    expect(sameRows(plain.rows, ours.rows)).toBeNull();
  });

  test("hop: count and sum per auction and bidder class (two keys), 3 s windows sliding by 1 s", async () => {
    const query = `SELECT auction, cls, window.start AS ws, n, total FROM (
      SELECT auction, bidder % 3 AS cls, hop(INTERVAL '1' SECOND, INTERVAL '3' SECOND) AS window, count(*) AS n, sum(price) AS total
      FROM bids GROUP BY auction, cls, window)`;
    const ours = await run(table, query, true);
    const expected = await duckSql([table], `${ON_TIME},
      starts AS (SELECT auction, bidder % 3 AS cls, price, unnest(generate_series((ts // ${S}) * ${S} - ${2 * S}, (ts // ${S}) * ${S}, ${S})) AS ws FROM events)
      SELECT auction, cls, ws, count(*) AS n, sum(price) AS total FROM starts GROUP BY ALL`);
    expect(ours.rows.length).toBeGreaterThan(1000);
    expect(sameRows(ours.rows, expected)).toBeNull();
    expect(ours.counts.combinedOut).toBeGreaterThan(0);
    // Three times the groups of the tumble test: less folds, still far fewer rows than the input.
    expect(ours.counts.combinedOut).toBeLessThan(3000 * 0.6);
    const plain = await run(table, query, false);
    expect(plain.counts.late).toBe(ours.counts.late);
    expect(ours.counts.late).toBeGreaterThan(10);
  });
});

/**
 * DuckDB's sessions over the on-time rows: a row starts a new one unless it is less than `gap` after the
 * previous of its key. `keyed` computes key columns that are not a bid's own.
 */
const duckSessions = (keyed: string, keys: string, gap: number, aggregates: string) => `${ON_TIME},
  marked_s AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY ${keys} ORDER BY ts) < ${gap} THEN 0 ELSE 1 END AS fresh FROM (SELECT *${keyed ? `, ${keyed}` : ""} FROM events)),
  numbered_s AS (SELECT *, sum(fresh) OVER (PARTITION BY ${keys} ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM marked_s)
  SELECT ${keys}, min(ts) AS ws, max(ts) + ${gap} AS we, ${aggregates} FROM numbered_s GROUP BY ${keys}, sid`;

describe("session aggregates with a combiner before the shuffle (parallelism 2) agree with DuckDB", () => {
  const table = bids();

  test("per auction, 400 ms gap: count, sum, min, max, avg and a FILTER; the same rows and late count without the combiner", async () => {
    const query = `SELECT auction, window.start AS ws, window.end AS we, n, total, lo, hi, mean, big FROM (
      SELECT auction, session(INTERVAL '400' MILLISECOND) AS window, count(*) AS n, sum(price) AS total, min(price) AS lo,
             max(price) AS hi, avg(price) AS mean, count(*) FILTER (WHERE price > 500) AS big
      FROM bids GROUP BY auction, window)`;
    const ours = await run(table, query, true);
    const expected = await duckSql([table], duckSessions("", "auction", 400_000, `count(*) AS n, sum(price) AS total, min(price) AS lo, max(price) AS hi,
      avg(price) AS mean, count(*) FILTER (WHERE price > 500) AS big`));
    expect(ours.rows.length).toBeGreaterThan(500);
    expect(sameRows(ours.rows, expected)).toBeNull();
    // Sessions of many rows (the hot auction's) and of one.
    expect(ours.rows.some((r) => (r.n as number) > 50)).toBe(true);
    expect(ours.rows.some((r) => r.n === 1)).toBe(true);
    const [lateRows] = await duckSql([table], `${ON_TIME} SELECT count(*) AS n FROM marked WHERE ts < wm`);
    expect(lateRows!.n).toBeGreaterThan(10);
    expect(ours.counts.late).toBe(lateRows!.n as number);
    expect(ours.counts.combinedIn).toBe(3000);
    expect(ours.counts.combinedOut).toBeLessThan(3000 * 0.6);
    const plain = await run(table, query, false);
    expect(plain.counts.combinedIn).toBe(0);
    expect(plain.counts.late).toBe(ours.counts.late);
    expect(sameRows(plain.rows, ours.rows)).toBeNull();
  });

  test("per auction class and bidder class (two keys), 150 ms gap", async () => {
    const query = `SELECT acls, bcls, window.start AS ws, window.end AS we, n, total FROM (
      SELECT auction % 4 AS acls, bidder % 3 AS bcls, session(INTERVAL '150' MILLISECOND) AS window, count(*) AS n, sum(price) AS total
      FROM bids GROUP BY acls, bcls, window)`;
    const ours = await run(table, query, true);
    const expected = await duckSql([table], duckSessions("auction % 4 AS acls, bidder % 3 AS bcls", "acls, bcls", 150_000, "count(*) AS n, sum(price) AS total"));
    expect(ours.rows.length).toBeGreaterThan(500);
    expect(sameRows(ours.rows, expected)).toBeNull();
    expect(ours.counts.combinedOut).toBeGreaterThan(0);
    expect(ours.counts.combinedOut).toBeLessThan(3000);
    const plain = await run(table, query, false);
    expect(plain.counts.late).toBe(ours.counts.late);
    expect(sameRows(plain.rows, ours.rows)).toBeNull();
  });
});

test("a UDAF with merge (an object state) is combined too: mean per auction and 2 s window equals DuckDB's", async () => {
  const registry = (await testRegistry()).clone();
  registry.register(
    definePlugin({
      name: "combine-oracle-udafs",
      udafs: [
        {
          name: "mean_of",
          args: [t.bigint()],
          returns: t.double(),
          init: () => ({ n: 0, total: 0 }),
          add: (s: { n: number; total: number }, v: number) => ({ n: s.n + 1, total: s.total + v }),
          merge: (a: { n: number; total: number }, b: { n: number; total: number }) => ({ n: a.n + b.n, total: a.total + b.total }),
          result: (s: { n: number; total: number }) => s.total / s.n,
        },
      ],
    }),
  );
  const table = bids();
  let job: Job | null = null;
  const ours = await runSql(
    `${runnelTables([table])}
     SELECT auction, window.start AS ws, m FROM (SELECT auction, tumble(INTERVAL '2' SECOND) AS window, mean_of(price) AS m FROM bids GROUP BY auction, window);`,
    { registry, parallelism: 2, onJob: (j) => (job = j) },
  );
  const expected = await duckSql([table], `${ON_TIME} SELECT auction, (ts // ${2 * S}) * ${2 * S} AS ws, avg(price) AS m FROM events GROUP BY ALL`);
  expect(ours.rows.length).toBeGreaterThan(500);
  expect(sameRows(ours.rows, expected)).toBeNull();
  expect((job as Job | null)!.metrics.operators.some((m) => m.operatorId.endsWith("-window_combine") && m.recordsOut > 0)).toBe(true);
});

describe("Nexmark q5's shape at parallelism 2: combined hop counts, then the top auctions per window through a local top-N", () => {
  const table = bids();
  for (const [fn, n] of [["rank", 1], ["dense_rank", 2]] as const) {
    test(`${fn}() <= ${n} per window equals DuckDB's; the window function receives a fraction of the aggregate's rows`, async () => {
      let job: Job | null = null;
      const query = `SELECT auction, num FROM (
        SELECT auction, num, ${fn}() OVER (PARTITION BY window ORDER BY num DESC) AS r FROM (
          SELECT auction, hop(INTERVAL '1' SECOND, INTERVAL '3' SECOND) AS window, count(*) AS num FROM bids GROUP BY auction, window))
        WHERE r <= ${n}`;
      const ours = await runSql(`${runnelTables([table])}\n${query};`, { parallelism: 2, onJob: (j) => (job = j) });
      const expected = await duckSql([table], `${ON_TIME},
        w AS (SELECT auction, unnest(generate_series((ts // ${S}) * ${S} - ${2 * S}, (ts // ${S}) * ${S}, ${S})) AS ws FROM events),
        c AS (SELECT auction, ws, count(*) AS num FROM w GROUP BY ALL),
        r AS (SELECT auction, num, ${fn}() OVER (PARTITION BY ws ORDER BY num DESC) AS r FROM c)
        SELECT auction, num FROM r WHERE r <= ${n}`);
      expect(ours.rows.length).toBeGreaterThan(30);
      expect(sameRows(ours.rows, expected)).toBeNull();
      const ops = (job as Job | null)!.metrics.operators;
      const into = (suffix: string) => ops.filter((m) => m.operatorId.endsWith(suffix)).reduce((k, m) => k + m.recordsIn, 0);
      expect(into("-rank_prefilter")).toBeGreaterThan(3 * into("-window_function"));
    });
  }
});

/**
 * Runs `sql` at parallelism 2: stopped without the combiner once a checkpoint has passed and new rows came
 * out, resumed with it and stopped the same way, resumed without it to the end. Every row the three runs emit.
 */
async function stoppedAndResumedAcrossTheCombiner(sql: string, stateDirPrefix: string): Promise<Row[]> {
  const registry = await testRegistry();
  const stateDir = tempDir(stateDirPrefix);
  const rows: Row[] = [];
  const run = async (combine: boolean, stop: boolean) => {
    const job = new Job(planSql(sql, registry), registry, {
      parallelism: 2,
      combine,
      stateDir,
      checkpointIntervalMs: 100,
      preview: () => ({ write: (b) => void rows.push(...b.rows) }),
      log: { info() {}, warn() {} },
    });
    const done = job.run();
    if (stop) {
      const before = rows.length;
      await waitUntil("a checkpoint with new rows out", () => job.lastCheckpoint !== null && rows.length > before, 60_000, 20);
      job.stop();
    }
    expect(await done).toBe(stop ? "stop" : "end");
    return job;
  };
  expect((await run(false, true)).restoredCheckpoint).toBeNull();
  expect((await run(true, true)).restoredCheckpoint).not.toBeNull();
  expect((await run(false, false)).restoredCheckpoint).not.toBeNull();
  return rows;
}

describe("checkpoints across the change", () => {
  test("stopped without the combiner, resumed with it, stopped, resumed without: the hop results are DuckDB's", async () => {
    const EVENTS = 6000;
    const sql = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '2000', message_count = '${EVENTS}', event_time_interval = '10ms', start_time = '2024-01-01T00:00:00Z');
SELECT k, window.start AS ws, n, total FROM (
  SELECT counter % 5 AS k, hop(INTERVAL '1' SECOND, INTERVAL '3' SECOND) AS window, count(*) AS n, sum(counter) AS total FROM impulse GROUP BY k, window)`;
    const rows = await stoppedAndResumedAcrossTheCombiner(sql, "runnel-combine-restore-");
    const expected = await duckQuery(`WITH events AS (SELECT c AS counter, c % 5 AS k, ${Date.UTC(2024, 0, 1) * 1000} + c * 10000 AS ts FROM range(${EVENTS}) r(c), range(2) s(subtask)),
      starts AS (SELECT k, counter, unnest(generate_series((ts // ${S}) * ${S} - ${2 * S}, (ts // ${S}) * ${S}, ${S})) AS ws FROM events)
      SELECT k, ws, count(*) AS n, sum(counter) AS total FROM starts GROUP BY ALL`);
    const ours = rows.map(([k, w, n, total]) => ({ k, ws: w, n, total }));
    expect(sameRows(ours, expected)).toBeNull();
  });
  test("sessions, stopped without the combiner, resumed with it, stopped, resumed without: DuckDB's sessions, none twice", async () => {
    // Stopping used to let one input's end release the other input's watermark after the stopping checkpoint:
    // sessions closed then were emitted again after the resume (about one run in two on a loaded machine).
    const EVENTS = 6000;
    const keep = "counter % 100 < 60 OR counter % 97 = 5";
    const sql = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '2000', message_count = '${EVENTS}', event_time_interval = '10ms', start_time = '2024-01-01T00:00:00Z');
SELECT k, window.start AS ws, window.end AS we, n, total FROM (
  SELECT counter % 5 AS k, session(INTERVAL '300' MILLISECOND) AS window, count(*) AS n, sum(counter) AS total FROM impulse WHERE ${keep} GROUP BY k, window)`;
    const rows = await stoppedAndResumedAcrossTheCombiner(sql, "runnel-combine-session-restore-");
    const expected = await duckQuery(`WITH events AS (SELECT c AS counter, c % 5 AS k, ${Date.UTC(2024, 0, 1) * 1000} + c * 10000 AS ts FROM range(${EVENTS}) r(c), range(2) s(subtask) WHERE ${keep.replaceAll("counter", "c")}),
      marked AS (SELECT *, CASE WHEN ts - lag(ts) OVER (PARTITION BY k ORDER BY ts) < 300000 THEN 0 ELSE 1 END AS opens FROM events),
      numbered AS (SELECT *, sum(opens) OVER (PARTITION BY k ORDER BY ts ROWS UNBOUNDED PRECEDING) AS session FROM marked)
      SELECT k, min(ts) AS ws, max(ts) + 300000 AS we, count(*) AS n, sum(counter) AS total FROM numbered GROUP BY k, session`);
    expect(expected.length).toBeGreaterThan(200);
    const ours = rows.map(([k, ws, we, n, total]) => ({ k, ws, we, n, total }));
    expect(sameRows(ours, expected)).toBeNull();
  });
});
