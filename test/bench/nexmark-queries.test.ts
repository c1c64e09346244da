/**
 * All 23 Nexmark queries (bench/nexmark-queries.ts) on a small bounded run of
 * the `nexmark` generator, each checked against DuckDB over the same events:
 * the generator's events are loaded into DuckDB as person/auction/bid tables,
 * Runnel's result (an updating result folded to its final rows) must equal
 * DuckDB's. q10's Parquet files are read back by DuckDB, q13's side input is
 * a JSON file, q14's UDF is TypeScript.
 */
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NEXMARK_QUERIES, NEXMARK_VIEWS, sideInputRows } from "../../bench/nexmark-queries.ts";
import { KIND_AUCTION, KIND_PERSON, NexmarkGenerator, eventKind } from "../../plugins/connector-nexmark/generator.ts";
import { runSql, sameRows, testRegistry } from "../kit/sql.ts";
import { nexmarkUdfs } from "../../bench/nexmark-udfs.ts";

setDefaultTimeout(120_000);

const EVENTS = 30_000;
const BASE = Date.UTC(2024, 2, 15, 13, 45, 0) * 1000;
let dir: string;
let duck: Awaited<ReturnType<DuckDBInstance["connect"]>>;
let instance: DuckDBInstance;

const normalize = (v: unknown): unknown => (typeof v === "bigint" ? Number(v) : v ?? null);

async function duckRows(sql: string): Promise<Record<string, unknown>[]> {
  const reader = await duck.runAndReadAll(sql);
  return (reader.getRowObjectsJS() as Record<string, unknown>[]).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, normalize(v)])));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "runnel-nexmark-"));
  writeFileSync(join(dir, "side_input.json"), sideInputRows().map((r) => JSON.stringify(r)).join("\n") + "\n");
  instance = await DuckDBInstance.create(":memory:");
  duck = await instance.connect();
  await duck.run("CREATE TABLE person (id BIGINT, name TEXT, email_address TEXT, credit_card TEXT, city TEXT, state TEXT, datetime BIGINT, extra TEXT)");
  await duck.run(
    "CREATE TABLE auction (id BIGINT, item_name TEXT, description TEXT, initial_bid BIGINT, reserve BIGINT, datetime BIGINT, expires BIGINT, seller BIGINT, category BIGINT, extra TEXT)",
  );
  await duck.run("CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, datetime BIGINT, extra TEXT)");
  await duck.run("CREATE TABLE side_input (key BIGINT, value TEXT)");
  // The connector's events at event_rate 0 (1 µs apart) with one split: event n at BASE + n.
  const gen = new NexmarkGenerator(0, BASE, 1);
  const rows: Record<string, unknown[][]> = { person: [], auction: [], bid: [] };
  for (let n = 0; n < EVENTS; n++) {
    const time = gen.time(n);
    const kind = eventKind(n);
    if (kind === KIND_PERSON) {
      const p = gen.person(n, time);
      rows.person!.push([p.id, p.name, p.email_address, p.credit_card, p.city, p.state, p.datetime, p.extra]);
    } else if (kind === KIND_AUCTION) {
      const a = gen.auction(n, time);
      rows.auction!.push([a.id, a.item_name, a.description, a.initial_bid, a.reserve, a.datetime, a.expires, a.seller, a.category, a.extra]);
    } else {
      const b = gen.bid(n, time);
      rows.bid!.push([b.auction, b.bidder, b.price, b.channel, b.url, b.datetime, b.extra]);
    }
  }
  rows.side_input = sideInputRows().map((r) => [r.key, r.value]);
  for (const [table, list] of Object.entries(rows)) {
    const appender = await duck.createAppender(table);
    for (const r of list) {
      for (const v of r) {
        if (typeof v === "number") appender.appendBigInt(BigInt(v));
        else appender.appendVarchar(String(v));
      }
      appender.endRow();
    }
    appender.closeSync();
  }
});

afterAll(() => {
  duck?.closeSync();
  instance?.closeSync();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const source = () =>
  `CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '0', message_count = '${EVENTS}', base_time = '${new Date(BASE / 1000).toISOString()}');\n${NEXMARK_VIEWS}`;

describe("the 23 Nexmark queries agree with DuckDB", () => {
  for (const [name, q] of Object.entries(NEXMARK_QUERIES)) {
    test(`${name}: ${q.title}`, async () => {
      const registry = await testRegistry();
      if (!registry.udf("count_char")) registry.register(nexmarkUdfs);
      const setup = (q.setup ?? "").replaceAll("{dir}", dir);
      const body = q.into ? `INSERT INTO ${q.into} ${q.runnel};` : `${q.runnel};`;
      const ours = await runSql(`${source()}${setup}\n${body}`, { registry });
      const theirs = await duckRows(q.duck);
      expect(theirs.length).toBeGreaterThan(0);
      let mine = ours.rows;
      if (q.into) mine = await duckRows(`SELECT * REPLACE (epoch_us(datetime) AS datetime) FROM read_parquet('${dir}/q10/**/*.parquet', hive_partitioning = false)`);
      const pick = (rows: Record<string, unknown>[]) => (q.compare ? rows.map((r) => Object.fromEntries(q.compare!.map((c) => [c, r[c]]))) : rows);
      expect(sameRows(pick(mine), pick(theirs), 1e-9)).toBeNull();
    });
  }
});
