/**
 * PostgreSQL lookup tables against a real server: INNER and LEFT lookup joins
 * on a single and on a composite key, with values of every readable type
 * (numbers, text, JSON, timestamps with and without zone, BYTEA, NULLs),
 * give what DuckDB gives joining the same rows; a key without a unique index
 * in PostgreSQL, a missing column and a server that is down are refused
 * before the job starts, naming the table; a server lost while the job runs
 * fails it, and a rerun from its checkpoint leaves every row once.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { SQL } from "bun";
import { runCli, startCli, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";
import { tcpProxy } from "../../kit/tcp-proxy.ts";
import { freshPostgresDatabase } from "../../kit/services.ts";
import { duckSql, prng, runnelTables, runSql, sameRows, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(120_000);

let url: string;
let db: SQL;
const rand = prng(5);
const T0 = 1_700_000_000_123_456;

/** The rows PostgreSQL holds: products 0..49 (the stream asks for 0..59). */
const products: TableSpec = {
  name: "products",
  columns: [
    { name: "id", type: "BIGINT" },
    { name: "title", type: "TEXT" },
    { name: "price", type: "DOUBLE" },
    { name: "added", type: "TIMESTAMP" },
    { name: "active", type: "BOOLEAN" },
  ],
  rows: Array.from({ length: 50 }, (_, i) => [i, i % 7 === 0 ? null : `p'${i} "q"`, i * 1.25, T0 + i * 1_000_001, i % 2 === 0]),
};
const stream: TableSpec = {
  name: "orders",
  columns: [
    { name: "oid", type: "BIGINT" },
    { name: "product", type: "BIGINT" },
    { name: "region", type: "TEXT" },
  ],
  rows: Array.from({ length: 300 }, (_, i) => [i, rand() < 0.05 ? null : Math.floor(rand() * 60), ["eu", "us", "ap"][Math.floor(rand() * 3)]]),
  batch: 17,
};
/** A composite key: (region, product) → discount, for some pairs. */
const discounts: TableSpec = {
  name: "discounts",
  columns: [
    { name: "region", type: "TEXT" },
    { name: "product", type: "BIGINT" },
    { name: "pct", type: "BIGINT" },
  ],
  rows: ["eu", "us"].flatMap((r, ri) => Array.from({ length: 60 }, (_, p) => p).filter((p) => p % 3 !== ri).map((p) => [r, p, (p * 7 + ri) % 50])),
};

beforeAll(async () => {
  url = await freshPostgresDatabase("runnel_lookup");
  db = new SQL(url);
  await db.unsafe(`CREATE TABLE products (id bigint PRIMARY KEY, title text, price double precision, added timestamptz, active boolean, extra jsonb DEFAULT '{"a": 1}', img bytea DEFAULT '\\x0102')`);
  for (const [id, title, price, added, active] of products.rows) {
    await db`INSERT INTO products (id, title, price, added, active) VALUES (${id}, ${title}, ${price}, to_timestamp(${(added as number) / 1e6}::numeric), ${active})`;
  }
  // to_timestamp goes through a double: store the exact microseconds.
  await db.unsafe(`UPDATE products SET added = timestamptz 'epoch' + (${T0}::bigint + id * 1000001) * interval '1 microsecond'`);
  await db.unsafe(`CREATE TABLE discounts (region text, product integer, pct integer, PRIMARY KEY (region, product))`);
  for (const [region, product, pct] of discounts.rows) await db`INSERT INTO discounts VALUES (${region}, ${product}, ${pct})`;
  await db.unsafe(`CREATE TABLE nokey (id bigint, v text)`);
});
afterAll(async () => {
  await db?.close();
});

const productsTable = () =>
  `CREATE TABLE products (id BIGINT PRIMARY KEY, title TEXT, price DOUBLE, added TIMESTAMP, active BOOLEAN) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'products', type = 'lookup');`;
const discountsTable = () =>
  `CREATE TABLE discounts (region TEXT, product BIGINT, pct BIGINT, PRIMARY KEY (region, product)) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'public.discounts', type = 'lookup', 'lookup.cache.max_bytes' = '4KB');`;

describe("postgres lookup joins agree with DuckDB", () => {
  for (const kind of ["LEFT", "INNER"]) {
    test(`${kind} JOIN on the primary key`, async () => {
      const q = `SELECT o.oid, o.product, p.title, p.price, p.added, p.active FROM orders o ${kind} JOIN products p ON o.product = p.id`;
      const ours = await runSql(`${runnelTables([stream])}\n${productsTable()}\n${q};`);
      const theirs = await duckSql([stream, products], q);
      expect(theirs.length).toBeGreaterThan(200);
      expect(sameRows(ours.rows, theirs)).toBeNull();
    });

    test(`${kind} JOIN on a composite key, keys computed from the stream`, async () => {
      const q = `SELECT o.oid, d.pct FROM orders o ${kind} JOIN discounts d ON d.region = o.region AND d.product = o.product % 60`;
      const ours = await runSql(`${runnelTables([stream])}\n${discountsTable()}\n${q};`, { parallelism: 2 });
      const theirs = await duckSql([stream, discounts], q);
      expect(sameRows(ours.rows, theirs)).toBeNull();
    });
  }

  test("JSON and BYTEA columns read back as Runnel holds them", async () => {
    const ours = await runSql(`${runnelTables([stream])}
CREATE TABLE products (id BIGINT PRIMARY KEY, extra JSON, img BYTEA) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'products', type = 'lookup');
SELECT o.oid, json_get_int(p.extra, 'a') AS a, encode(p.img, 'hex') AS img FROM orders o JOIN products p ON o.product = p.id WHERE o.oid < 20;`);
    expect(ours.rows.length).toBeGreaterThan(10);
    for (const r of ours.rows) expect(r).toMatchObject({ a: 1, img: "0102" });
  });
});

describe("postgres lookup tables refused before the job starts", () => {
  const run = async (table: string) => {
    const dir = tempDir("runnel-pg-lookup-");
    const file = writeSql(dir, `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '0', message_count = '5');\n${table}\nSELECT t.v FROM imp JOIN t ON CAST(counter AS BIGINT) = t.id;`);
    return runCli(["run", file, "--state-dir", join(dir, "state"), "--quiet"]);
  };

  test("a key that is not unique in PostgreSQL", async () => {
    const r = await run(`CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'nokey', type = 'lookup');`);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`table t: postgres lookup 't': table public.nokey has no primary key or unique index on exactly (id)`);
  });

  test("a column the table lacks", async () => {
    const r = await run(`CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'products', type = 'lookup');`);
    expect(r.stderr).toContain("table public.products has no column 'v'");
  });

  test("a server that is down", async () => {
    const r = await run(`CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT) WITH (connector = 'postgres', connection_string = 'postgres://postgres@127.0.0.1:1/x', table_name = 'nokey', type = 'lookup');`);
    expect(r.stderr).toContain("table t: postgres lookup 't': cannot reach PostgreSQL at 127.0.0.1:1/x");
  });
});

describe("a store lost while the job runs", () => {
  test("fails the job naming the table; a rerun from the checkpoint writes every row once", async () => {
    const proxy = await tcpProxy("127.0.0.1", Number(new URL(url).port || 5432));
    const viaProxy = url.replace(/@[^/]+\//, `@127.0.0.1:${proxy.port}/`);
    const COUNT = 3000;
    const dir = tempDir("runnel-pg-lookup-cut-");
    const file = writeSql(
      dir,
      `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1500', message_count = '${COUNT}');
CREATE TABLE products (id BIGINT PRIMARY KEY, title TEXT) WITH (connector = 'postgres', connection_string = '${viaProxy}', table_name = 'products', type = 'lookup', 'lookup.cache.max_bytes' = '0', 'lookup.timeout' = '3s');
CREATE TABLE out (id BIGINT, title TEXT) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'cut_out', sink.create_table = 'true');
INSERT INTO out SELECT CAST(counter AS BIGINT) AS id, p.title FROM imp LEFT JOIN products p ON CAST(counter % 60 AS BIGINT) = p.id;`,
    );
    const args = ["run", file, "--state-dir", join(dir, "state"), "--checkpoint-interval", "200ms", "--quiet"];
    try {
      const first = startCli(args);
      const stderr = new Response(first.stderr).text();
      await waitUntil("some joined rows committed", async () => {
        const [{ n }] = (await db`SELECT count(*)::int AS n FROM cut_out`.catch(() => [{ n: 0 }])) as { n: number }[];
        return n > 0;
      });
      proxy.cut();
      expect(await first.exited).not.toBe(0);
      expect(await stderr).toContain("postgres lookup 'products':");
      proxy.restore();
      const rerun = await runCli(args, { timeoutMs: 60_000 });
      expect(rerun.code).toBe(0);
      const rows = (await db`SELECT id, title FROM cut_out`) as { id: string | number; title: string | null }[];
      expect(rows.map((r) => Number(r.id)).sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT }, (_, i) => i));
      const titles = new Map(products.rows.map((r) => [r[0] as number, r[1]]));
      for (const r of rows) expect(r.title).toBe((titles.get(Number(r.id) % 60) ?? null) as string | null);
    } finally {
      await proxy.close();
    }
  });
});
