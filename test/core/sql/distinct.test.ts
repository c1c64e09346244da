/** SELECT DISTINCT against DuckDB: over an append-only stream, per window, and over an updating input whose rows come and go. */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { duckSql, prng, runSql, runnelTables, sameRows, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

const MINUTE = 60_000_000;
const T0 = Math.floor(1_700_000_000_000_000 / (60 * MINUTE)) * 60 * MINUTE;
const rand = prng(5);
const events: TableSpec = {
  name: "e",
  columns: [
    { name: "id", type: "BIGINT" },
    { name: "k", type: "BIGINT" },
    { name: "s", type: "TEXT" },
    { name: "ts", type: "TIMESTAMP" },
  ],
  rows: Array.from({ length: 600 }, (_, i) => [i, Math.floor(rand() * 8), rand() < 0.1 ? null : ["x", "y", "z"][Math.floor(rand() * 3)], T0 + Math.floor((i * 5 * MINUTE) / 600)]),
  watermark: "ts",
};

describe("SELECT DISTINCT agrees with DuckDB", () => {
  test("distinct rows of an append-only stream (NULLs equal to each other)", async () => {
    const ours = await runSql(`${runnelTables([events])}\nSELECT DISTINCT k, s FROM e;`);
    const theirs = await duckSql([events], "SELECT DISTINCT k, s FROM e");
    expect(sameRows(ours.rows, theirs)).toBeNull();
  });

  test("distinct per window", async () => {
    const ours = await runSql(`${runnelTables([events])}\nSELECT DISTINCT window.start AS ws, n FROM (SELECT tumble(INTERVAL '1' MINUTE) AS window, k, count(*) AS n FROM e GROUP BY window, k);`);
    const theirs = await duckSql([events], `SELECT DISTINCT ws, n FROM (SELECT (ts // ${MINUTE}) * ${MINUTE} AS ws, k, count(*) AS n FROM e GROUP BY ws, k)`);
    expect(sameRows(ours.rows, theirs)).toBeNull();
  });

  test("over an updating input: a value is deleted when no row holds it any more", async () => {
    const q = "SELECT DISTINCT c FROM (SELECT k, count(*) AS c FROM e GROUP BY k)";
    const ours = await runSql(`${runnelTables([events])}\n${q};`);
    expect(ours.updating).toBe(true);
    expect(sameRows(ours.rows, await duckSql([events], q))).toBeNull();
  });
});
