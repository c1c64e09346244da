/**
 * Window functions over windowed input against DuckDB: ranking, navigation and
 * aggregates OVER (PARTITION BY window ...), top-N (`WHERE rn <= N`, planned
 * with a bounded state per partition) and deduplication (`rn = 1`); and the
 * shapes Runnel refuses, at their place, with what to write.
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { planSql } from "../../../core/sql/index.ts";
import type { PlanNode } from "../../../core/plan/logical.ts";
import { duckSql, planError, prng, runSql, runnelTables, sameRows, testRegistry, BID_COLUMNS, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

const MINUTE = 60_000_000;
const T0 = Math.floor(1_700_000_000_000_000 / (60 * MINUTE)) * 60 * MINUTE;
let bids: TableSpec;

beforeAll(() => {
  const rand = prng(3);
  const rows: unknown[][] = [];
  // 12 minutes of bids, in event-time order: 12 one-minute windows, 6 auctions, 30 bidders.
  for (let i = 0; i < 1200; i++) {
    const auction = Math.floor(rand() * 6);
    const bidder = Math.floor(rand() * 30);
    const price = rand() < 0.03 ? null : Math.floor(rand() * 500);
    rows.push([i, auction, bidder, price, T0 + Math.floor((i * 12 * MINUTE) / 1200)]);
  }
  bids = {
    name: "bids",
    columns: BID_COLUMNS,
    rows,
    watermark: "ts",
  };
});

/** Per minute and auction: bid count, total and max price, as Runnel's subquery and as DuckDB's CTE. */
const PER_AUCTION = `SELECT tumble(INTERVAL '1' MINUTE) AS window, auction, count(*) AS n, sum(price) AS total, max(price) AS top FROM bids GROUP BY window, auction`;
const DUCK_PER_AUCTION = `SELECT (ts // ${MINUTE}) * ${MINUTE} AS ws, auction, count(*) AS n, sum(price) AS total, max(price) AS top FROM bids GROUP BY ws, auction`;

async function compare(runnelOuter: string, duckOuter: string) {
  const ours = await runSql(`${runnelTables([bids])}\n${runnelOuter};`);
  const theirs = await duckSql([bids], duckOuter);
  expect(theirs.length).toBeGreaterThan(0);
  expect(sameRows(ours.rows, theirs, 1e-9)).toBeNull();
  return ours;
}

describe("window functions agree with DuckDB", () => {
  test("ranking: row_number, rank, dense_rank, percent_rank, cume_dist, ntile", async () => {
    const over = (w: string) => `OVER (PARTITION BY ${w} ORDER BY n DESC, auction)`;
    const tied = (w: string) => `OVER (PARTITION BY ${w} ORDER BY n DESC)`;
    await compare(
      `SELECT window.start AS ws, auction, n, row_number() ${over("window")} AS rn, rank() ${tied("window")} AS r, dense_rank() ${tied("window")} AS dr,
              percent_rank() ${tied("window")} AS pr, cume_dist() ${tied("window")} AS cd, ntile(4) ${over("window")} AS nt
       FROM (${PER_AUCTION}) WHERE auction < 5`,
      `SELECT ws, auction, n, row_number() ${over("ws")} AS rn, rank() ${tied("ws")} AS r, dense_rank() ${tied("ws")} AS dr,
              percent_rank() ${tied("ws")} AS pr, cume_dist() ${tied("ws")} AS cd, ntile(4) ${over("ws")} AS nt
       FROM (${DUCK_PER_AUCTION}) WHERE auction < 5`,
    );
  });

  test("navigation: lag, lead (offsets, defaults), first_value, last_value, nth_value with frames", async () => {
    const o = (w: string) => `OVER (PARTITION BY ${w} ORDER BY total NULLS FIRST, auction)`;
    const rows = (w: string) => `OVER (PARTITION BY ${w} ORDER BY total NULLS FIRST, auction ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)`;
    await compare(
      `SELECT window.start AS ws, auction, lag(total) ${o("window")} AS l1, lag(total, 2, -1) ${o("window")} AS l2, lead(auction) ${o("window")} AS ld,
              first_value(auction) ${o("window")} AS fv, last_value(auction) ${o("window")} AS lv, nth_value(auction, 2) ${o("window")} AS nv
       FROM (${PER_AUCTION})`,
      `SELECT ws, auction, lag(total) ${o("ws")} AS l1, lag(total, 2, -1) ${o("ws")} AS l2, lead(auction) ${o("ws")} AS ld,
              first_value(auction) ${o("ws")} AS fv, last_value(auction) ${o("ws")} AS lv, nth_value(auction, 2) ${o("ws")} AS nv
       FROM (${DUCK_PER_AUCTION})`,
    );
    await compare(
      `SELECT window.start AS ws, auction, first_value(auction) ${rows("window")} AS fv, last_value(auction) ${rows("window")} AS lv, sum(n) ${rows("window")} AS s
       FROM (${PER_AUCTION})`,
      `SELECT ws, auction, first_value(auction) ${rows("ws")} AS fv, last_value(auction) ${rows("ws")} AS lv, sum(n) ${rows("ws")} AS s
       FROM (${DUCK_PER_AUCTION})`,
    );
  });

  test("IGNORE NULLS: lag, lead, first_value, last_value, nth_value skip the NULL values; RESPECT NULLS is the default", async () => {
    // A third of the values NULL, so skipping them matters.
    const inner = (sub: string) => `SELECT *, CASE WHEN n % 3 = 0 THEN NULL ELSE total END AS x FROM (${sub})`;
    const o = (w: string) => `OVER (PARTITION BY ${w} ORDER BY n, auction)`;
    const rows = (w: string) => `OVER (PARTITION BY ${w} ORDER BY n, auction ROWS BETWEEN 2 PRECEDING AND 1 FOLLOWING)`;
    const calls = (w: string) =>
      `lag(x) IGNORE NULLS ${o(w)} AS l1, lag(x, 2, -1) IGNORE NULLS ${o(w)} AS l2, lead(x) IGNORE NULLS ${o(w)} AS ld, lead(x, 2) IGNORE NULLS ${o(w)} AS ld2,
       first_value(x) IGNORE NULLS ${o(w)} AS fv, last_value(x) IGNORE NULLS ${o(w)} AS lv, nth_value(x, 2) IGNORE NULLS ${o(w)} AS nv,
       first_value(x) IGNORE NULLS ${rows(w)} AS fr, last_value(x) IGNORE NULLS ${rows(w)} AS lr, nth_value(x, 2) IGNORE NULLS ${rows(w)} AS nr,
       lag(x) RESPECT NULLS ${o(w)} AS rl`;
    // DuckDB writes the option inside the parentheses.
    const duck = (text: string) => text.replace(/\) (IGNORE|RESPECT) NULLS/g, " $1 NULLS)");
    const ours = await compare(`SELECT window.start AS ws, auction, x, ${calls("window")} FROM (${inner(PER_AUCTION)})`, `SELECT ws, auction, x, ${duck(calls("ws"))} FROM (${inner(DUCK_PER_AUCTION)})`);
    expect(ours.rows.some((r) => r.x === null && r.l1 !== null)).toBe(true);
  });

  test("RANGE frames with offsets: numeric keys (ascending, descending, NULLs), timestamps with intervals", async () => {
    const num = (w: string, order: string, frame: string) => `OVER (PARTITION BY ${w} ORDER BY ${order} RANGE ${frame})`;
    const calls = (w: string, iv: (s: string) => string) =>
      `sum(n) ${num(w, "total", "BETWEEN 100 PRECEDING AND 50 FOLLOWING")} AS a, count(*) ${num(w, "total DESC", "BETWEEN 100 PRECEDING AND CURRENT ROW")} AS b,
       first_value(auction) ${num(w, "total NULLS FIRST", "BETWEEN 75.5 FOLLOWING AND 300 FOLLOWING")} AS c, last_value(auction) ${num(w, "total", "BETWEEN 200 PRECEDING AND 1 PRECEDING")} AS d,
       max(n) ${num(w, "total", "30 PRECEDING")} AS e, min(n) ${num(w, "last_ts", `BETWEEN ${iv("10 seconds")} PRECEDING AND CURRENT ROW`)} AS f,
       count(*) ${num(w, "last_ts DESC", `BETWEEN UNBOUNDED PRECEDING AND ${iv("5 seconds")} FOLLOWING`)} AS g`;
    const inner = (sub: string) => `SELECT * FROM (${sub.replace("max(price) AS top", "max(price) AS top, max(ts) AS last_ts")})`;
    const ours = await compare(
      `SELECT window.start AS ws, auction, ${calls("window", (x) => `INTERVAL '${x}'`)} FROM (${inner(PER_AUCTION)})`,
      `SELECT ws, auction, ${calls("ws", (x) => String(Number(x.split(" ")[0]) * 1_000_000))} FROM (${inner(DUCK_PER_AUCTION)})`,
    );
    // Frames that differ from the default: some rows see fewer rows than their partition.
    expect(ours.rows.some((r) => r.b !== null && (r.b as number) > 1)).toBe(true);
  });

  test("a RANGE frame over time in a partition that never ends: a one-minute moving sum per auction (updating)", async () => {
    const q = (frame: string, ts: string) =>
      `SELECT id, auction, sum(price) OVER (PARTITION BY auction ORDER BY ${ts} RANGE BETWEEN ${frame} PRECEDING AND CURRENT ROW) AS s FROM bids WHERE id < 300`;
    const ours = await runSql(`${runnelTables([bids])}\n${q("INTERVAL '1' MINUTE", "ts")};`);
    expect(ours.updating).toBe(true);
    expect(sameRows(ours.rows, await duckSql([bids], q(String(MINUTE), "ts")))).toBeNull();
  });

  test("aggregates OVER: whole partition, running (peers included), and a sliding ROWS frame", async () => {
    const whole = (w: string) => `OVER (PARTITION BY ${w})`;
    const running = (w: string) => `OVER (PARTITION BY ${w} ORDER BY n)`;
    await compare(
      `SELECT window.start AS ws, auction, sum(n) ${whole("window")} AS all_n, n * 1.0 / sum(n) ${whole("window")} AS share, count(*) ${whole("window")} AS c,
              avg(total) ${whole("window")} AS a, max(top) ${whole("window")} AS m, stddev(total) ${whole("window")} AS sd
       FROM (${PER_AUCTION})`,
      `SELECT ws, auction, sum(n) ${whole("ws")} AS all_n, n * 1.0 / sum(n) ${whole("ws")} AS share, count(*) ${whole("ws")} AS c,
              avg(total) ${whole("ws")} AS a, max(top) ${whole("ws")} AS m, stddev_samp(total) ${whole("ws")} AS sd
       FROM (${DUCK_PER_AUCTION})`,
    );
    await compare(
      `SELECT window.start AS ws, auction, sum(n) ${running("window")} AS run, count(total) ${running("window")} AS c, min(total) ${running("window")} AS lo
       FROM (${PER_AUCTION})`,
      `SELECT ws, auction, sum(n) ${running("ws")} AS run, count(total) ${running("ws")} AS c, min(total) ${running("ws")} AS lo
       FROM (${DUCK_PER_AUCTION})`,
    );
  });

  test("top-N per window (Arroyo's and Flink's pattern) keeps N rows per partition in state", async () => {
    const inner = (w: string) => `SELECT *, row_number() OVER (PARTITION BY ${w} ORDER BY n DESC, auction) AS rn FROM (${w === "window" ? PER_AUCTION : DUCK_PER_AUCTION})`;
    const ours = await compare(
      `SELECT window.start AS ws, auction, n, rn FROM (${inner("window")}) WHERE rn <= 3`,
      `SELECT ws, auction, n, rn FROM (${inner("ws")}) WHERE rn <= 3`,
    );
    expect(ours.rows.length).toBe(36);
    const plan = planSql(`${runnelTables([bids])}\nSELECT window.start AS ws, auction, n, rn FROM (${inner("window")}) WHERE rn <= 3;`, await testRegistry());
    const limits: unknown[] = [];
    const visit = (n: PlanNode): void => {
      if (n.kind === "window_function") limits.push(n.limit);
      if ("input" in n) visit(n.input);
    };
    visit(plan.sinks[0]!.input);
    expect(limits).toEqual([{ n: 3, by: "row_number" }]);
  });

  test("top-N with ties: rank and dense_rank keep every row tied within N", async () => {
    for (const fn of ["rank", "dense_rank"]) {
      const inner = (w: string) => `SELECT *, ${fn}() OVER (PARTITION BY ${w} ORDER BY n DESC) AS r FROM (${w === "window" ? PER_AUCTION : DUCK_PER_AUCTION})`;
      await compare(`SELECT window.start AS ws, auction, n, r FROM (${inner("window")}) WHERE r <= 2`, `SELECT ws, auction, n, r FROM (${inner("ws")}) WHERE r <= 2`);
    }
  });

  test("deduplication: the first bid per bidder and minute (ROW_NUMBER() ... = 1)", async () => {
    const perBidder = `SELECT tumble(INTERVAL '1' MINUTE) AS window, bidder, auction, min(id) AS first_id FROM bids GROUP BY window, bidder, auction`;
    const duckPerBidder = `SELECT (ts // ${MINUTE}) * ${MINUTE} AS ws, bidder, auction, min(id) AS first_id FROM bids GROUP BY ws, bidder, auction`;
    await compare(
      `SELECT window.start AS ws, bidder, auction FROM (SELECT *, row_number() OVER (PARTITION BY window, bidder ORDER BY first_id) AS rn FROM (${perBidder})) WHERE rn = 1`,
      `SELECT ws, bidder, auction FROM (SELECT *, row_number() OVER (PARTITION BY ws, bidder ORDER BY first_id) AS rn FROM (${duckPerBidder})) WHERE rn = 1`,
    );
  });
});

describe("partitions that never end give an updating result", () => {
  test("top 3 bids per auction over the append-only stream (state bounded by 3 per auction)", async () => {
    const q = "SELECT auction, id, price, rn FROM (SELECT auction, id, price, row_number() OVER (PARTITION BY auction ORDER BY price DESC NULLS LAST, id) AS rn FROM bids) WHERE rn <= 3";
    const ours = await compare(q, q);
    expect(ours.updating).toBe(true);
    expect(ours.rows.length).toBe(18);
    // Rows that fell out of the top 3 were retracted on the way.
    expect(ours.changes.some((c) => c.op !== 0)).toBe(true);
  });

  test("top 2 auctions per parity over an updating GROUP BY: a total that drops is retracted from the top", async () => {
    // Totals go down as well as up (negative prices), so a leader can fall behind.
    const totals = "SELECT auction, sum(CASE WHEN id % 7 = 0 THEN -3 * price ELSE price END) AS total FROM bids GROUP BY auction";
    const q = (inner: string) => `SELECT auction, total, r FROM (SELECT auction, total, rank() OVER (PARTITION BY auction % 2 ORDER BY total DESC) AS r FROM (${inner})) WHERE r <= 2`;
    const ours = await compare(q(totals), q(totals));
    expect(ours.updating).toBe(true);
  });

  test("lag and a running count per bidder over the append-only stream", async () => {
    const q = (s: string) => `SELECT id, bidder, lag(price, 1, 0) OVER (PARTITION BY bidder ORDER BY id) AS prev, count(*) OVER (PARTITION BY bidder ORDER BY id) AS c FROM bids WHERE ${s}`;
    await compare(q("bidder < 5"), q("bidder < 5"));
  });

  test("IGNORE NULLS in a partition that never ends: each bidder's last non-NULL price before this bid, retracted and redone as bids arrive", async () => {
    const q = (ignore: (call: string) => string) =>
      `SELECT id, bidder, ${ignore("lag(price)")} OVER (PARTITION BY bidder ORDER BY id) AS prev, ${ignore("last_value(price)")} OVER (PARTITION BY bidder ORDER BY id) AS last FROM bids WHERE bidder < 4`;
    const ours = await compare(q((c) => `${c} IGNORE NULLS`), q((c) => c.replace(")", " IGNORE NULLS)")));
    expect(ours.updating).toBe(true);
  });
});

describe("a window function keeps only the input columns read above it", () => {
  /** The column names under each window function node of the first sink's plan (and the nodes). */
  async function windowInputs(sql: string, sink = 0) {
    const plan = planSql(sql, await testRegistry());
    const out: Extract<PlanNode, { kind: "window_function" }>[] = [];
    const visit = (n: PlanNode): void => {
      if (n.kind === "window_function") out.push(n);
      if ("input" in n) visit(n.input);
    };
    visit(plan.sinks[sink]!.input);
    return out;
  }

  test("SELECT * under a SELECT of a few columns: the window function's rows narrow to those and what OVER and the functions read", async () => {
    const q = (ts: string) =>
      `SELECT auction, rn, prev, total FROM (SELECT *, row_number() OVER (PARTITION BY bidder ORDER BY ${ts} DESC, id) AS rn,
         lag(id, 1, -1) OVER (PARTITION BY bidder ORDER BY ${ts} DESC, id) AS prev,
         count(*) FILTER (WHERE id % 2 = 0) OVER (PARTITION BY bidder ORDER BY ${ts} DESC, id) AS total FROM bids) WHERE rn <= 3`;
    const tables = runnelTables([bids]);
    const nodes = await windowInputs(`${tables}\n${q("ts")};`);
    expect(nodes.length).toBe(1);
    // price is read by nothing.
    expect(nodes[0]!.input.schema.fields.map((f) => f.name)).toEqual(["id", "auction", "bidder", "ts"]);
    const dedup = await windowInputs(`${tables}\nSELECT auction, ts FROM (SELECT *, row_number() OVER (PARTITION BY bidder ORDER BY ts DESC) AS rn FROM bids) WHERE rn = 1;`);
    expect(dedup[0]!.input.schema.fields.map((f) => f.name)).toEqual(["auction", "bidder", "ts"]);
    const ours = await runSql(`${tables}\n${q("ts")};`);
    const theirs = await duckSql([bids], q("ts"));
    expect(theirs.length).toBe(90);
    expect(sameRows(ours.rows, theirs)).toBeNull();
  });

  test("a view read by two queries: each reading narrows to its own columns", async () => {
    const sql = `${runnelTables([bids])}
CREATE TABLE a WITH (connector = 'blackhole');
CREATE TABLE b WITH (connector = 'blackhole');
CREATE VIEW ranked AS SELECT *, row_number() OVER (PARTITION BY auction ORDER BY price DESC) AS rn FROM bids;
INSERT INTO a SELECT id, rn FROM ranked WHERE rn <= 2;
INSERT INTO b SELECT price, rn FROM ranked WHERE rn <= 2;`;
    const names = async (sink: number) => (await windowInputs(sql, sink))[0]!.input.schema.fields.map((f) => f.name);
    expect(await names(0)).toEqual(["id", "auction", "price"]);
    expect(await names(1)).toEqual(["auction", "price"]);
  });
});

describe("a limit that already guarantees the WHERE bound leaves it out of the filter", () => {
  /** The maps' filters and the window function nodes of the first sink's plan. */
  async function shape(sql: string) {
    const plan = planSql(sql, await testRegistry());
    const filters: unknown[] = [];
    const windows: Extract<PlanNode, { kind: "window_function" }>[] = [];
    const visit = (n: PlanNode): void => {
      if (n.kind === "map" && n.filter) filters.push(n.filter);
      if (n.kind === "window_function") windows.push(n);
      if ("input" in n) visit(n.input);
    };
    visit(plan.sinks[0]!.input);
    return { filters, windows };
  }
  const tables = () => runnelTables([bids]);
  const ranked = "SELECT *, row_number() OVER (PARTITION BY bidder ORDER BY ts DESC, id) AS rn FROM bids";

  test("deduplication whose rank nothing reads: no filter above it, no ranking column, and DuckDB's rows", async () => {
    const q = `SELECT auction, bidder, ts FROM (${ranked}) WHERE rn = 1`;
    const { filters, windows } = await shape(`${tables()}\n${q};`);
    expect(filters).toEqual([]);
    expect(windows.length).toBe(1);
    expect(windows[0]!.deduplicate).toBe(true);
    expect(windows[0]!.functions).toEqual([]);
    expect(windows[0]!.schema.fields.map((f) => f.name)).toEqual(["id", "auction", "bidder", "ts"]);
    await compare(q, q);
  });

  test("deduplication whose rank is selected keeps the column (every value 1)", async () => {
    const q = `SELECT auction, bidder, rn FROM (${ranked}) WHERE rn <= 1`;
    const { filters, windows } = await shape(`${tables()}\n${q};`);
    expect(filters).toEqual([]);
    expect(windows[0]!.functions.map((f) => f.fn)).toEqual(["row_number"]);
    const ours = await compare(q, q);
    expect(ours.rows.every((r) => Number((r as { rn: unknown }).rn) === 1)).toBe(true);
  });

  test("top-N: the bound leaves the filter, another condition stays", async () => {
    const q = `SELECT auction, bidder, price, rn FROM (${ranked}) WHERE rn <= 3 AND price > 100`;
    const { filters, windows } = await shape(`${tables()}\n${q};`);
    expect(windows[0]!.limit).toEqual({ n: 3, by: "row_number" });
    expect(filters.length).toBe(1);
    // `price > 100` alone: a comparison, not an AND of two.
    expect((filters[0] as { name: string }).name).toBe(">");
    const ours = await compare(q, q);
    expect(ours.rows.length).toBeGreaterThan(0);
  });
});

describe("window functions Runnel refuses, with the rewrite", () => {
  const TABLE = "CREATE TABLE bids (id BIGINT, auction BIGINT, price BIGINT, ts TIMESTAMP, WATERMARK FOR ts) WITH (connector = 'test_rows', dataset = 'none');";
  const cases: [string, string, RegExp][] = [
    ["SELECT auction, count(*), rank() OVER (ORDER BY count(*)) FROM bids GROUP BY auction", "rank()", /cannot be mixed with GROUP BY.*subquery/],
    ["SELECT auction FROM bids WHERE row_number() OVER (ORDER BY price) = 1", "row_number()", /not allowed in WHERE; compute it in the SELECT list of a subquery/],
    [
      `SELECT sum(n) OVER (PARTITION BY window ORDER BY n, auction RANGE BETWEEN 2 PRECEDING AND CURRENT ROW) FROM (SELECT tumble(INTERVAL '1' MINUTE) AS window, auction, count(*) AS n FROM bids GROUP BY window, auction)`,
      "RANGE",
      /RANGE frame with an offset needs exactly one ORDER BY key.*ROWS BETWEEN/,
    ],
    [
      `SELECT sum(n) OVER (PARTITION BY window ORDER BY window.start RANGE BETWEEN 2 PRECEDING AND CURRENT ROW) FROM (SELECT tumble(INTERVAL '1' MINUTE) AS window, auction, count(*) AS n FROM bids GROUP BY window, auction)`,
      "2 PRECEDING",
      /offset of this RANGE frame must be a constant, an INTERVAL/,
    ],
    [
      `SELECT lag(n IGNORE NULLS) OVER (PARTITION BY window ORDER BY n) FROM (SELECT tumble(INTERVAL '1' MINUTE) AS window, auction, count(*) AS n FROM bids GROUP BY window, auction)`,
      "IGNORE NULLS",
      /write IGNORE NULLS after the call's parentheses: first_value\(x\) IGNORE NULLS OVER/,
    ],
    [
      `SELECT rank() IGNORE NULLS OVER (PARTITION BY window ORDER BY n) FROM (SELECT tumble(INTERVAL '1' MINUTE) AS window, auction, count(*) AS n FROM bids GROUP BY window, auction)`,
      "rank()",
      /IGNORE NULLS applies to lag, lead, first_value, last_value and nth_value/,
    ],
  ];
  for (const [query, at, message] of cases) {
    test(query.slice(0, 90), async () => {
      const err = await planError(`${TABLE}\n${query};`);
      expect(err.message).toMatch(message);
      expect(err.at).toStartWith(at);
    });
  }
});
