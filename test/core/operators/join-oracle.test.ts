/**
 * Join semantics against an independent oracle: DuckDB joins the same two input
 * files. Inputs are out of order, hold NULL keys, keys found on one side only,
 * and records far behind the watermark. Updating joins take every record (they
 * have no windows to be late for); window joins see only what each side's
 * window aggregate keeps (records at or after the watermark: the largest event
 * time seen so far in that file minus 1 s). Runs at parallelism 1 and 2.
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
let ordersFile: string;
let paymentsFile: string;

function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Out-of-order events with keys k0..k{keys-1}, a few NULL keys and a few records far too late. */
function events(seed: number, count: number, keys: number, keyOffset: number, valueName: string): string {
  const rand = prng(seed);
  const lines: string[] = [];
  let t = Date.UTC(2024, 0, 1) * 1000;
  for (let i = 0; i < count; i++) {
    t += Math.floor(rand() * 200_000);
    let ts = t - Math.floor(rand() * 900_000);
    if (i % 53 === 7) ts = t - 4 * S - Math.floor(rand() * 15 * S);
    const key = i % 41 === 3 ? null : `k${keyOffset + Math.floor(rand() * keys)}`;
    lines.push(JSON.stringify({ id: key, [valueName]: Math.floor(rand() * 1000), ts: new Date(ts / 1000).toISOString() }));
  }
  return lines.join("\n") + "\n";
}

beforeAll(() => {
  dir = tempDir("runnel-join-oracle-");
  ordersFile = join(dir, "orders.jsonl");
  paymentsFile = join(dir, "payments.jsonl");
  // Orders use keys k0..k59, payments k5..k64: both sides have keys the other lacks.
  writeFileSync(ordersFile, events(7, 900, 60, 0, "amount"));
  writeFileSync(paymentsFile, events(11, 500, 60, 5, "paid"));
});

const TABLES = () => `
CREATE TABLE orders (id TEXT, amount BIGINT, ts TIMESTAMP, WATERMARK FOR ts)
  WITH (connector = 'single_file', path = '${ordersFile}', format = 'json', type = 'source');
CREATE TABLE payments (id TEXT, paid BIGINT, ts TIMESTAMP, WATERMARK FOR ts)
  WITH (connector = 'single_file', path = '${paymentsFile}', format = 'json', type = 'source');`;

/** A file's records as DuckDB sees them, with `on_time` telling whether a window aggregate keeps them. */
const duckInput = (name: string, file: string, value: string) => `
  ${name}_raw AS (
    SELECT row_number() OVER () AS rn, id, ${value}, epoch_us(ts::TIMESTAMP) AS ts
    FROM read_json('${file}', format = 'newline_delimited', columns = {id: 'VARCHAR', ${value}: 'BIGINT', ts: 'VARCHAR'})
  ),
  ${name} AS (
    SELECT *, coalesce(ts >= max(ts) OVER (ORDER BY rn ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - ${S}, true) AS on_time
    FROM ${name}_raw
  )`;
const DUCK_INPUTS = () => `WITH ${duckInput("orders", ordersFile, "amount")}, ${duckInput("payments", paymentsFile, "paid")}`;

async function runPipeline(query: string, name: string, parallelism: number, format = "json"): Promise<Record<string, any>[]> {
  const out = join(dir, `${name}-${parallelism}.jsonl`);
  const sql = `${TABLES()}
CREATE TABLE results WITH (connector = 'single_file', path = '${out}', format = '${format}', type = 'sink', timestamp_format = 'unix_millis');
INSERT INTO results ${query};
`;
  // One process: which records are late depends on when each input's watermark arrives, and across
  // worker processes that timing is not the file's order any more (as in Flink); the oracle drops by order.
  const res = await runCli(["run", writeSql(dir, sql, `${name}-${parallelism}.sql`), "--parallelism", String(parallelism), "--workers", "1", "--quiet"]);
  if (res.code !== 0) throw new Error(`runnel failed (${res.code}):\n${res.stderr}`);
  return readJsonLines(out);
}

const norm = normalizeRows;

/** The rows a debezium_json changelog leaves standing: creates minus deletes, as a multiset. */
function replay(changes: Record<string, any>[]): Record<string, unknown>[] {
  const live = new Map<string, number>();
  for (const c of changes) {
    const key = JSON.stringify(c.op === "d" ? c.before : c.after);
    const n = (live.get(key) ?? 0) + (c.op === "d" ? -1 : 1);
    if (n < 0) throw new Error(`delete of a row that is not there: ${key}`);
    live.set(key, n);
  }
  return [...live].flatMap(([k, n]) => Array.from({ length: n }, () => JSON.parse(k)));
}

for (const parallelism of [1, 2]) {
  describe(`joins agree with DuckDB (parallelism ${parallelism})`, () => {
    test("updating inner join: every order meets every payment of its key, late records included, NULL keys never", async () => {
      const ours = await runPipeline(
        `SELECT o.id, o.amount, p.paid FROM orders o JOIN payments p ON o.id = p.id`,
        "inner",
        parallelism,
      );
      const expected = await duckQuery(`${DUCK_INPUTS()}
        SELECT o.id, o.amount, p.paid FROM orders o JOIN payments p ON o.id = p.id`);
      expect(expected.length).toBeGreaterThan(1000);
      expect(norm(ours)).toEqual(norm(expected));
    });

    test("updating left join: the changelog leaves exactly DuckDB's LEFT JOIN standing; padded rows are retracted", async () => {
      const changes = await runPipeline(
        `SELECT o.id, o.amount, p.paid FROM orders o LEFT JOIN payments p ON o.id = p.id`,
        "left",
        parallelism,
        "debezium_json",
      );
      const expected = await duckQuery(`${DUCK_INPUTS()}
        SELECT o.id, o.amount, p.paid FROM orders o LEFT JOIN payments p ON o.id = p.id`);
      expect(changes.some((c) => c.op === "d")).toBe(true);
      // Only padded rows are ever retracted.
      expect(changes.filter((c) => c.op === "d").every((c) => c.before.paid === null)).toBe(true);
      expect(norm(replay(changes))).toEqual(norm(expected));
    });

    test("window join of two tumbling aggregates: inner and left, on key and window, late records dropped per side", async () => {
      const sides = `
        (SELECT tumble(INTERVAL '10' SECOND) AS window, id, count(*) AS orders, sum(amount) AS total FROM orders GROUP BY window, id) o
        {JOIN} (SELECT tumble(INTERVAL '10' SECOND) AS window, id, count(*) AS payments, max(paid) AS top FROM payments GROUP BY window, id) p
        ON o.id = p.id`;
      const select = `SELECT o.id, o.window.start AS window_start, o.orders, o.total, p.payments, p.top FROM`;
      const duckSides = `
        (SELECT ts // ${10 * S} AS w, id, count(*) AS orders, sum(amount) AS total FROM orders WHERE on_time GROUP BY ALL) o
        {JOIN} (SELECT ts // ${10 * S} AS w, id, count(*) AS payments, max(paid) AS top FROM payments WHERE on_time GROUP BY ALL) p
        ON o.id = p.id AND o.w = p.w`;
      const duckSelect = `SELECT o.id, o.w * ${10 * S} // 1000 AS window_start, o.orders, o.total, p.payments, p.top FROM`;
      for (const kind of ["JOIN", "LEFT JOIN"]) {
        const ours = await runPipeline(`${select} ${sides.replace("{JOIN}", kind)}`, `window-${kind.replace(" ", "-")}`, parallelism);
        // DuckDB's NULL keys never match, but a LEFT JOIN keeps the NULL-key group of a window.
        const expected = await duckQuery(`${DUCK_INPUTS()} ${duckSelect} ${duckSides.replace("{JOIN}", kind)}`);
        expect(expected.length).toBeGreaterThan(50);
        expect(norm(ours)).toEqual(norm(expected));
      }
    });

    test("window join of two hopping aggregates (2 s slide, 4 s width): each row joins in every window it falls in", async () => {
      const ours = await runPipeline(
        `SELECT o.id, o.window.start AS window_start, o.orders, p.payments FROM
           (SELECT hop(INTERVAL '2' SECOND, INTERVAL '4' SECOND) AS window, id, count(*) AS orders FROM orders GROUP BY window, id) o
           JOIN (SELECT hop(INTERVAL '2' SECOND, INTERVAL '4' SECOND) AS window, id, count(*) AS payments FROM payments GROUP BY window, id) p
           ON o.id = p.id AND o.window = p.window`,
        "hop",
        parallelism,
      );
      const starts = (side: string) =>
        `(SELECT id, unnest(generate_series((ts // ${2 * S}) * ${2 * S} - ${2 * S}, (ts // ${2 * S}) * ${2 * S}, ${2 * S})) AS ws FROM ${side} WHERE on_time)`;
      const expected = await duckQuery(`${DUCK_INPUTS()}
        SELECT o.id, o.ws // 1000 AS window_start, o.orders, p.payments
        FROM (SELECT id, ws, count(*) AS orders FROM ${starts("orders")} GROUP BY ALL) o
        JOIN (SELECT id, ws, count(*) AS payments FROM ${starts("payments")} GROUP BY ALL) p ON o.id = p.id AND o.ws = p.ws`);
      expect(expected.length).toBeGreaterThan(50);
      expect(norm(ours)).toEqual(norm(expected));
    });
  });
}
