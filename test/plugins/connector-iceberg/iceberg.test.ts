/**
 * The Iceberg sink end to end through the CLI: tables in a file catalog and in
 * a REST catalog (pyiceberg's SQL catalog behind REST, scripts/services/iceberg-rest.sh),
 * on local disk and on the S3 emulator, read back by pyiceberg and DuckDB's
 * iceberg extension; every file's partition tuple equals pyiceberg's own
 * transforms (identity, day, hour, bucket with Iceberg's Murmur3) of its rows;
 * kill -9 around the catalog commit leaves every row once and each data file
 * referenced once.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { duckQuery } from "../../kit/duckdb.ts";
import { expectReadersEqualReference, ICEBERG_REST, readTable, type TableSummary, runPipeline } from "../../kit/lakehouse.ts";
import { dropBuckets, freshBucket, listKeys, listUploads, s3Client, S3_ENDPOINT, S3_KEY, S3_SECRET } from "../../kit/s3.ts";
import { bidsSql, filesUnder, referenceRows } from "../connector-filesystem/readback.ts";

setDefaultTimeout(180_000);
const EVENTS = 60_000;
const RATE = 30_000;
const client = s3Client();
let dir: string;
let reference: string;
let seq = 0;

beforeAll(async () => {
  dir = tempDir("runnel-iceberg-");
  reference = await referenceRows(dir, EVENTS, RATE);
});
afterAll(async () => {
  await dropBuckets(client);
  rmSync(dir, { recursive: true, force: true });
});


const icebergWith = (path: string, catalog: "file" | { table: string }, extra = "") =>
  `connector = 'iceberg', path = '${path}', format = 'parquet', 'rolling_policy.file_size' = '250KB', 'parquet.row_group_size' = '5000',
   'iceberg.partitioning' = 'hour(time), bucket(4, auction)'` +
  (catalog === "file" ? "" : `, 'iceberg.catalog' = 'rest', 'iceberg.catalog.uri' = '${ICEBERG_REST}', 'iceberg.table' = '${catalog.table}'`) +
  extra;

/** Both readers see the reference rows once; partitions agree with pyiceberg's transforms; each file is referenced once. */
async function expectTableEqualsReference(args: string[], name: string): Promise<{ summary: TableSummary; files: string[] }> {
  const prefix = join(dir, `${name}-read`);
  const { summary } = readTable(["iceberg", ...args.slice(0, 2), prefix, ...args.slice(2)]);
  await expectReadersEqualReference(prefix, ["pyiceberg", "duckdb"], reference, summary);
  expect(summary.partition_checked).toBeGreaterThan(0);
  expect(summary.partition_mismatches).toBe(0);
  return { summary, files: JSON.parse(readFileSync(`${prefix}-files.json`, "utf8")) };
}

const latestMetadata = (table: string) =>
  join(table, "metadata", readdirSync(join(table, "metadata")).filter((n) => /^v\d+\.metadata\.json$/.test(n)).sort((a, b) => Number(a.slice(1, -14)) - Number(b.slice(1, -14))).at(-1)!);

/** The data files on local disk are exactly the ones the table references. */
function expectNoOrphans(table: string, files: string[]) {
  const onDisk = filesUnder(table).filter((f) => !f.includes("/metadata/"));
  expect(onDisk.filter((f) => basename(f).startsWith("."))).toEqual([]);
  expect(onDisk.sort()).toEqual(files.map((f) => f.replace(/^file:\/\//, "")).sort());
}

describe("iceberg sink, file catalog on local disk", () => {
  test("partitioned by hour(time) and bucket(4, auction): pyiceberg and DuckDB read every row once, partitions match pyiceberg's transforms", async () => {
    const table = join(dir, "file-plain");
    const sql = writeSql(dir, bidsSql({ events: EVENTS, rate: RATE, sinkWith: icebergWith(table, "file") }), "file-plain.sql");
    await runPipeline(sql, join(dir, "file-plain-state"), null);
    const { summary, files } = await expectTableEqualsReference(["-", latestMetadata(table)], "file-plain");
    expect(summary.snapshots).toBeGreaterThan(1);
    expectNoOrphans(table, files);
    const meta = JSON.parse(readFileSync(latestMetadata(table), "utf8"));
    const last = meta.snapshots.at(-1).summary;
    expect(last["runnel.job-id"]).toBe("local");
    expect(Number(last["runnel.checkpoint-id"])).toBeGreaterThan(0);
  });

  const scenarios: [string, string[]][] = [
    ["after the checkpoint completed, before the files and the commit", ["sink-before-commit:3"]],
    ["after the manifests were written, before the catalog commit", ["iceberg-before-commit:2"]],
    ["after the catalog commit, before it was acknowledged", ["iceberg-after-commit:2"]],
    ["mid-file, then during recovery", ["filesystem-commit-with-open-files:1", "filesystem-recovery-before-complete:1"]],
  ];
  for (const [what, crashes] of scenarios) {
    test(`kill -9 ${what}: every row once, each file referenced once`, async () => {
      const name = `file-${crashes.join("+").replace(/[^a-z0-9]+/gi, "-")}`;
      const table = join(dir, name);
      const sql = writeSql(dir, bidsSql({ events: EVENTS, rate: RATE, sinkWith: icebergWith(table, "file") }), `${name}.sql`);
      for (const c of crashes) await runPipeline(sql, join(dir, `${name}-state`), c);
      await runPipeline(sql, join(dir, `${name}-state`), null);
      const { files } = await expectTableEqualsReference(["-", latestMetadata(table)], name);
      expectNoOrphans(table, files);
    });
  }
});

test("identity, day and bucket of an integer, a timestamp and a text column: partitions match pyiceberg's transforms, nulls included", async () => {
  const table = join(dir, "transforms");
  const sql = writeSql(
    dir,
    `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000000', message_count = '3000');
CREATE TABLE out (id BIGINT, k INT, ts TIMESTAMP, name TEXT) WITH (connector = 'iceberg', path = '${table}', format = 'parquet',
  'iceberg.partitioning' = 'k, day(ts), bucket(8, name)');
INSERT INTO out SELECT CAST(counter AS BIGINT) AS id, CASE WHEN counter % 7 = 0 THEN NULL ELSE CAST(counter % 3 AS INT) END AS k,
  CAST('2024-03-01 00:00:00' AS TIMESTAMP) + CAST(counter % 4 AS BIGINT) * INTERVAL '1' DAY - INTERVAL '1' SECOND AS ts,
  'user-' || CAST(counter % 50 AS TEXT) AS name FROM imp;`,
    "transforms.sql",
  );
  await runPipeline(sql, join(dir, "transforms-state"), null);
  const prefix = join(dir, "transforms-read");
  const { summary } = readTable(["iceberg", "-", latestMetadata(table), prefix]);
  expect(summary.partition_mismatches).toBe(0);
  expect(summary.partition_checked).toBeGreaterThan(3000);
  for (const reader of ["pyiceberg", "duckdb"]) {
    const [r] = await duckQuery(
      `SELECT count(*) AS n, count(DISTINCT id) AS ids, count(k) AS ks, count(DISTINCT name) AS names FROM read_json('${prefix}-${reader}.jsonl', format = 'newline_delimited')`,
    );
    expect(r).toEqual({ n: 3000n, ids: 3000n, ks: BigInt(3000 - Math.ceil(3000 / 7)), names: 50n });
  }
});

describe("iceberg sink, REST catalog", () => {
  const scenarios: [string, string[]][] = [
    ["uninterrupted", []],
    ["killed after the manifests were written, before the catalog commit", ["iceberg-before-commit:2"]],
    ["killed after the catalog commit, before it was acknowledged", ["iceberg-after-commit:2"]],
  ];
  for (const [what, crashes] of scenarios) {
    test(`local files, ${what}: every row once through the catalog, each file referenced once`, async () => {
      const name = `rest-${crashes.join("+").replace(/[^a-z0-9]+/gi, "-") || "plain"}`;
      const ident = `runnel_test.t${Date.now().toString(36)}${seq++}`;
      const table = join(dir, name);
      const sql = writeSql(dir, bidsSql({ events: EVENTS, rate: RATE, sinkWith: icebergWith(table, { table: ident }) }), `${name}.sql`);
      for (const c of crashes) await runPipeline(sql, join(dir, `${name}-state`), c);
      await runPipeline(sql, join(dir, `${name}-state`), null);
      const { files } = await expectTableEqualsReference([ICEBERG_REST, ident], name);
      expectNoOrphans(table, files);
    });
  }

  test("on S3 (moto), killed after the catalog commit: pyiceberg and DuckDB read every row once over S3, no upload left open", async () => {
    const bucket = await freshBucket(client, "runnel-iceberg");
    const ident = `runnel_test.s${Date.now().toString(36)}${seq++}`;
    const s3 = `, 'storage.aws_endpoint' = '${S3_ENDPOINT}', 'storage.aws_access_key_id' = '${S3_KEY}', 'storage.aws_secret_access_key' = '${S3_SECRET}'`;
    const sql = writeSql(dir, bidsSql({ events: 60_000, rate: RATE, sinkWith: icebergWith(`s3://${bucket}/wh/bids`, { table: ident }, s3).replace("250KB", "80KB") }), "rest-s3.sql");
    await runPipeline(sql, join(dir, "rest-s3-state"), "iceberg-after-commit:2");
    await runPipeline(sql, join(dir, "rest-s3-state"), null);
    const prefix = join(dir, "rest-s3-read");
    const { summary } = readTable(["iceberg", ICEBERG_REST, ident, prefix, S3_ENDPOINT]);
    const rows = Number((await duckQuery(`SELECT count(*) AS n FROM read_json('${prefix}-pyiceberg.jsonl', format = 'newline_delimited')`))[0]!.n);
    expect(summary.pyiceberg_rows).toBe(rows);
    expect(summary.duckdb_rows).toBe(rows);
    expect(summary.files).toBe(summary.distinct_files);
    expect(summary.partition_mismatches).toBe(0);
    const referenced: string[] = JSON.parse(readFileSync(`${prefix}-files.json`, "utf8"));
    const data = (await listKeys(client, bucket, "wh/bids/")).map((k) => `s3://${bucket}/${k.key}`).filter((k) => !k.includes("/metadata/"));
    expect(data.sort()).toEqual(referenced.sort());
    expect(await listUploads(client, bucket)).toEqual([]);
  });
});

describe("iceberg sink refuses at planning what it cannot write", () => {
  test("a column whose type differs from the existing table's is named, with what to write", async () => {
    const ident = `runnel_test.m${Date.now().toString(36)}${seq++}`;
    const table = join(dir, "mismatch");
    await runPipeline(writeSql(dir, bidsSql({ events: 1000, rate: 100_000, sinkWith: icebergWith(table, { table: ident }) }), "mismatch-1.sql"), join(dir, "mismatch-1"), null);
    const second = bidsSql({ events: 1000, rate: 100_000, sinkWith: icebergWith(table, { table: ident }) })
      .replace("price BIGINT", "price DOUBLE")
      .replace("bid.price", "CAST(bid.price AS DOUBLE) AS price");
    const r = await runCli(["run", writeSql(dir, second, "mismatch-2.sql"), "--state-dir", join(dir, "mismatch-2"), "--quiet"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("column 'price' is double in the query but long in the Iceberg table");
  });

  test("day() of a non-timestamp column and an unreadable transform are refused with what to write", async () => {
    const bad = (p: string) => writeSql(dir, bidsSql({ events: 10, rate: 100, sinkWith: icebergWith(join(dir, "bad"), "file").replace("hour(time), bucket(4, auction)", p) }), "bad.sql");
    let r = await runCli(["validate", bad("day(auction)")]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("day(auction) needs a TIMESTAMP column");
    r = await runCli(["validate", bad("truncate(3, channel)")]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("write a comma-separated list of column, identity(column), day(column), hour(column) or bucket(N, column)");
  });
});
