/**
 * GROUP BY the window of a windowed subquery (Nexmark q5's shape in Flink's
 * text): a second aggregate per window, joined back to the first on the window
 * with a condition, against DuckDB; for tumble, hop and session windows.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { duckSql, prng, runSql, runnelTables, sameRows, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

const MS = 1000;
const T0 = 1_700_000_000_000_000;
const rand = prng(21);
const bids: TableSpec = {
  name: "bid",
  columns: [
    { name: "auction", type: "BIGINT" },
    { name: "ts", type: "TIMESTAMP" },
  ],
  rows: Array.from({ length: 2000 }, (_, i) => [Math.floor(rand() * rand() * 30), T0 + i * 20]),
  watermark: "ts",
};
const HOP = "hop(INTERVAL '2' MILLISECOND, INTERVAL '10' MILLISECOND)";
const perAuction = (w: string) => `SELECT auction, ${w} AS window, count(*) AS num FROM bid GROUP BY auction, window`;

describe("GROUP BY the window of a subquery", () => {
  test("q5 as Flink writes it: the max count per hop window, joined back on the window and num >= maxn", async () => {
    const ours = await runSql(`${runnelTables([bids])}
SELECT A.auction, A.num, A.window.start AS ws FROM (${perAuction(HOP)}) A
JOIN (SELECT window, max(num) AS maxn FROM (${perAuction(HOP)}) GROUP BY window) M
ON A.window = M.window AND A.num >= M.maxn;`);
    const theirs = await duckSql(
      [bids],
      `WITH w AS (SELECT auction, unnest(generate_series((ts // ${2 * MS}) * ${2 * MS} - ${8 * MS}, (ts // ${2 * MS}) * ${2 * MS}, ${2 * MS})) AS ws FROM bid),
c AS (SELECT auction, ws, count(*) AS num FROM w GROUP BY auction, ws)
SELECT auction, num, ws FROM c WHERE num = (SELECT max(num) FROM c c2 WHERE c2.ws = c.ws)`,
    );
    expect(theirs.length).toBeGreaterThan(20);
    expect(sameRows(ours.rows, theirs)).toBeNull();
  });

  for (const [name, w, duckWindow] of [
    ["tumble", "tumble(INTERVAL '5' MILLISECOND)", `(ts // ${5 * MS}) * ${5 * MS}`],
    ["session", "session(INTERVAL '1' MILLISECOND)", null],
  ] as const) {
    test(`a second aggregate per ${name} window keeps the window for what follows`, async () => {
      const ours = await runSql(`${runnelTables([bids])}
SELECT window.start AS ws, total, n FROM (SELECT window, sum(num) AS total, count(*) AS n FROM (${perAuction(w)}) GROUP BY window);`);
      if (duckWindow) {
        const theirs = await duckSql([bids], `SELECT ws, sum(num) AS total, count(*) AS n FROM (SELECT auction, ${duckWindow} AS ws, count(*) AS num FROM bid GROUP BY auction, ws) GROUP BY ws`);
        expect(sameRows(ours.rows, theirs)).toBeNull();
      } else {
        // Sessions are per auction: each (auction, session) is its own window, so every group has one row.
        expect(ours.rows.every((r) => r.n === 1)).toBe(true);
        expect(ours.rows.reduce((s, r) => s + (r.total as number), 0)).toBe(2000);
      }
    });
  }
});
