/**
 * SET updating_ttl (Arroyo's spelling): updating aggregates, joins and change
 * streams drop a key's state once the watermark is the TTL past its last change,
 * so a key that comes back starts afresh. Checked against DuckDB on input whose
 * gaps are far from the TTL either way (expiry happens as watermarks advance).
 */
import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { duckQuery } from "../../kit/duckdb.ts";
import { foldChanges, normalizeRows, readJsonLines } from "../../kit/rows.ts";

setDefaultTimeout(60_000);

const S = 1_000_000;
const T0 = Date.UTC(2024, 0, 1) * 1000;
let dir: string;
let events: string;
let orders: string;
let payments: string;

beforeAll(() => {
  dir = tempDir("runnel-ttl-");
  // Ten keys, each in bursts of 4 s (a row every 50 ms) every 250 s; a tick row every second keeps the watermark moving.
  const rows: { k: string; v: number; us: number }[] = [];
  for (let k = 0; k < 10; k++) {
    for (let burst = 0; burst < 8; burst++) {
      const start = (k * 17 + burst * 250) * S;
      for (let i = 0; i < 80; i++) rows.push({ k: `k${k}`, v: burst * 100 + i, us: start + i * 50_000 });
    }
  }
  // Three keys come back at the very end, so their last groups are still alive when the input ends.
  for (let k = 0; k < 3; k++) for (let i = 0; i < 40; i++) rows.push({ k: `k${k}`, v: 9000 + i, us: 2095 * S + i * 100_000 });
  // Sources emit a watermark per read batch (4096 rows): a tick every 10 ms makes that every ~41 s of event time.
  for (let s = 0; s < 210_000; s++) rows.push({ k: "tick", v: 1, us: s * 10_000 + 1 });
  rows.sort((a, b) => a.us - b.us);
  events = join(dir, "events.jsonl");
  writeFileSync(events, rows.map((r) => JSON.stringify({ k: r.k, v: r.v, ts: new Date((T0 + r.us) / 1000).toISOString() })).join("\n") + "\n");

  // Orders and payments: a payment 1 s after its order, or 120 s after it (long past a 10 s TTL);
  // fillers that match nothing make read batches span ~41 s of event time, as above.
  const o: { id: number; us: number }[] = [];
  const p: { id: number; us: number }[] = [];
  for (let id = 0; id < 300; id++) {
    o.push({ id, us: id * S });
    p.push({ id, us: id * S + (id % 3 === 0 ? 120 * S : S) });
  }
  for (let i = 0; i < 42_000; i++) {
    o.push({ id: 1_000_000 + i, us: i * 10_000 + 7 });
    p.push({ id: 2_000_000 + i, us: i * 10_000 + 7 });
  }
  o.sort((a, b) => a.us - b.us);
  p.sort((a, b) => a.us - b.us);
  const line = (x: { id: number; us: number }) => JSON.stringify({ id: x.id, ts: new Date((T0 + x.us) / 1000).toISOString() });
  orders = join(dir, "orders.jsonl");
  payments = join(dir, "payments.jsonl");
  writeFileSync(orders, o.map(line).join("\n") + "\n");
  writeFileSync(payments, p.map(line).join("\n") + "\n");
});

async function run(sql: string, name: string): Promise<Record<string, unknown>[]> {
  const out = join(dir, `${name}.jsonl`);
  // One process, so that expiry follows the files' order as the oracle does (see join-oracle.test.ts).
  const r = await runCli(["run", writeSql(dir, sql.replace("$OUT", out), `${name}.sql`), "--quiet", "--parallelism", "2", "--workers", "1"]);
  if (r.code !== 0) throw new Error(`runnel failed (${r.code}):\n${r.stderr}`);
  return foldChanges(readJsonLines(out) as any);
}

const EVENTS = () => `CREATE TABLE events (k TEXT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts) WITH (connector = 'single_file', path = '${events}', format = 'json', type = 'source');
CREATE TABLE out WITH (connector = 'single_file', path = '$OUT', format = 'debezium_json', type = 'sink');`;

// DuckDB: a key's rows split into groups wherever it was silent for longer than the TTL (its bursts).
const BURSTS = () => `WITH e AS (SELECT k, v, epoch_us(ts::TIMESTAMP) AS us FROM read_json('${events}', columns = {k: 'VARCHAR', v: 'BIGINT', ts: 'VARCHAR'})),
  marked AS (SELECT *, CASE WHEN us - lag(us) OVER (PARTITION BY k ORDER BY us) > 10000000 THEN 1 ELSE 0 END AS starts FROM e),
  grouped AS (SELECT *, sum(starts) OVER (PARTITION BY k ORDER BY us ROWS UNBOUNDED PRECEDING) AS g FROM marked)`;

describe("updating_ttl", () => {
  test("an updating aggregate starts a key afresh after the TTL; expired rows stay downstream", async () => {
    const ours = await run(`SET updating_ttl = INTERVAL '10' SECOND;\n${EVENTS()}\nINSERT INTO out SELECT k, count(*) AS n, sum(v) AS total FROM events GROUP BY k;`, "agg");
    const expected = await duckQuery(`${BURSTS()} SELECT k, count(*) AS n, sum(v) AS total FROM grouped GROUP BY k, g`);
    expect(expected.length).toBe(84);
    expect(normalizeRows(ours)).toEqual(normalizeRows(expected));
  });

  test("with updating_ttl_retract, an expired group's row is retracted", async () => {
    const ours = await run(
      `SET updating_ttl = '10 seconds';\nSET updating_ttl_retract = true;\n${EVENTS()}\nINSERT INTO out SELECT k, count(*) AS n, sum(v) AS total FROM events GROUP BY k;`,
      "agg-retract",
    );
    // What is left are the groups alive when the input ended (it ends at 2100 s): the tick key's and the three late ones.
    const expected = await duckQuery(`${BURSTS()}
      SELECT k, count(*) AS n, sum(v) AS total FROM grouped GROUP BY k, g HAVING max(us) - ${T0} > 2050000000`);
    expect(expected.length).toBe(4);
    expect(normalizeRows(ours)).toEqual(normalizeRows(expected));
  });

  test("without a TTL every key keeps one group (the default, as in Flink)", async () => {
    const ours = await run(`${EVENTS()}\nINSERT INTO out SELECT k, count(*) AS n FROM events GROUP BY k;`, "agg-unbounded");
    expect(normalizeRows(ours)).toEqual(normalizeRows(await duckQuery(`${BURSTS()} SELECT k, count(*) AS n FROM grouped GROUP BY k`)));
  });

  test("an updating join forgets rows the TTL has passed: late payments find no order", async () => {
    const ours = await run(
      `SET updating_ttl = INTERVAL '10' SECOND;
CREATE TABLE orders (id BIGINT, ts TIMESTAMP, WATERMARK FOR ts) WITH (connector = 'single_file', path = '${orders}', format = 'json', type = 'source');
CREATE TABLE payments (id BIGINT, ts TIMESTAMP, WATERMARK FOR ts) WITH (connector = 'single_file', path = '${payments}', format = 'json', type = 'source');
CREATE TABLE out WITH (connector = 'single_file', path = '$OUT', format = 'debezium_json', type = 'sink');
INSERT INTO out SELECT o.id FROM orders o JOIN payments p ON o.id = p.id;`,
      "join",
    );
    const expected = await duckQuery(`SELECT o.id FROM read_json('${orders}') o JOIN read_json('${payments}') p ON o.id = p.id
      WHERE o.id < 1000000 AND abs(epoch_us(p.ts::TIMESTAMP) - epoch_us(o.ts::TIMESTAMP)) < 60000000`);
    expect(expected.length).toBe(200);
    expect(normalizeRows(ours)).toEqual(normalizeRows(expected));
  });

  test("unknown settings and bad values are refused at their position", async () => {
    const bad = await runCli(["validate", writeSql(dir, `SET updating_tll = INTERVAL '1' HOUR;\n${EVENTS()}\nSELECT 1 FROM events;`, "bad.sql")]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown setting 'updating_tll'");
    expect(bad.stderr).toContain("did you mean `updating_ttl`?");
    const negative = await runCli(["validate", writeSql(dir, `SET updating_ttl = '0 seconds';\n${EVENTS()}\nSELECT 1 FROM events;`, "zero.sql")]);
    expect(negative.code).toBe(2);
    expect(negative.stderr).toContain("updating_ttl must be a positive interval");
  });
});
