/**
 * The filesystem sink end to end, through the real CLI: Parquet and JSON
 * lines on local disk and on the S3 emulator, with partitions, rolling and
 * checkpoints in the middle of files. Every file is read back by DuckDB and
 * pyarrow and must hold exactly the rows of a reference run.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { DeleteObjectsCommand, HeadObjectCommand, CreateBucketCommand } from "@aws-sdk/client-s3";
import { startCli, tempDir, writeSql } from "../../kit/cli.ts";
import { dropBuckets, freshBucket, listKeys, listUploads, s3Client, S3_ENDPOINT, S3_KEY, S3_SECRET } from "../../kit/s3.ts";
import { bidsSql, download, expectJsonEqualsReference, expectParquetEqualsReference, filesUnder, referenceRows } from "./readback.ts";

afterAll(async () => {
  await dropBuckets(s3Client());
  rmSync(dir, { recursive: true, force: true });
});
setDefaultTimeout(120_000);

const EVENTS = 60_000;
/** Events per second: runs last ~2 s, so checkpoints (every 100-200 ms) fall in the middle of files. */
const RATE = 30_000;
let dir: string;
let reference: string;

beforeAll(async () => {
  dir = tempDir("runnel-fs-");
  reference = await referenceRows(dir, EVENTS, RATE);
});

async function run(sql: string, name: string, env: Record<string, string> = {}, interval = "100ms", parallelism = 1) {
  const file = writeSql(dir, sql, `${name}.sql`);
  const args = ["run", file, "--state-dir", join(dir, `${name}-state`), "--checkpoint-interval", interval, "--parallelism", String(parallelism), "--quiet"];
  const proc = startCli(args, undefined, env);
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  return { stderr, code };
}

describe("filesystem sink on local disk", () => {
  test("Parquet partitioned by event time and rolled by size: every row once, named with prefix and suffix, no staging file left", async () => {
    const out = join(dir, "local-parquet");
    const r = await run(
      bidsSql({
        events: EVENTS,
        rate: RATE,
        sinkWith: `connector = 'filesystem', path = 'file://${out}', format = 'parquet', 'parquet.compression' = 'snappy',
          'rolling_policy.file_size' = '300KB', 'partitioning.time_pattern' = 'date=%Y-%m-%d/second=%S',
          'filename.prefix' = 'bids-', 'filename.suffix' = '-v1', 'parquet.row_group_size' = '5000'`,
      }),
      "local-parquet",
    );
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const files = filesUnder(out);
    expect(files.filter((f) => basename(f).startsWith("."))).toEqual([]);
    for (const f of files) {
      expect(f).toMatch(/\/date=2024-01-01\/second=0[0-9]\/bids-[0-9a-z]{13}-0-\d+-v1\.parquet$/);
    }
    // 60k events 33 µs apart span two seconds of event time.
    const partitions = new Set(files.map((f) => f.split("/").at(-2)));
    expect(partitions).toEqual(new Set(["second=00", "second=01"]));
    expect(files.length).toBeGreaterThan(partitions.size); // rolled by size
    const rows = await expectParquetEqualsReference(files, reference, dir);
    expect(rows).toBeGreaterThan(EVENTS * 0.9);
  });

  test("JSON lines with gzip, rolled by size, parallel subtasks: every row once", async () => {
    const out = join(dir, "local-json");
    const r = await run(
      bidsSql({
        events: EVENTS,
        rate: RATE,
        sinkWith: `connector = 'filesystem', path = '${out}', format = 'json', compression = 'gzip', 'rolling_policy.file_size' = '200KB'`,
      }),
      "local-json",
      {},
      "100ms",
      2,
    );
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const files = filesUnder(out);
    expect(files.length).toBeGreaterThan(1);
    for (const f of files) expect(f).toMatch(/\/[0-9a-z]{13}-[01]-\d+\.json\.gz$/);
    expect(new Set(files.map((f) => /-([01])-\d+\.json\.gz$/.exec(f)![1]))).toEqual(new Set(["0", "1"]));
    await expectJsonEqualsReference(files, reference, dir);
  });
  test("raw_string lines go to .txt files (not .json), one value a line, every row once", async () => {
    const out = join(dir, "local-raw");
    const r = await run(
      `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '0', message_count = '5000');
CREATE TABLE lines (value TEXT) WITH (connector = 'filesystem', path = '${out}', format = 'raw_string', type = 'sink');
INSERT INTO lines SELECT concat('line ', CAST(counter AS TEXT)) AS value FROM impulse;`,
      "local-raw",
    );
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const files = filesUnder(out);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) expect(f).toMatch(/\.txt$/);
    const lines = files.flatMap((f) => readFileSync(f, "utf8").split("\n").filter((l) => l !== ""));
    expect(lines.sort()).toEqual(Array.from({ length: 5000 }, (_, i) => `line ${i}`).sort());
  });

  test("rolled by interval: a run of ~2 s with rolling_policy.interval = '400ms' gives several files, every row once", async () => {
    const out = join(dir, "local-interval");
    const r = await run(
      bidsSql({ events: EVENTS, rate: RATE, sinkWith: `connector = 'filesystem', path = '${out}', format = 'parquet', 'rolling_policy.interval' = '400ms'` }),
      "local-interval",
    );
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const files = filesUnder(out);
    expect(files.length).toBeGreaterThanOrEqual(3);
    await expectParquetEqualsReference(files, reference, dir);
  });

  test("rolled by inactivity: an event-time partition that gets no more rows becomes visible while the job still runs", async () => {
    const out = join(dir, "local-inactivity");
    const file = writeSql(
      dir,
      bidsSql({
        events: EVENTS,
        rate: 20_000,
        sinkWith: `connector = 'filesystem', path = '${out}', format = 'parquet', 'partitioning.time_pattern' = 'second=%S',
          'rolling_policy.inactivity_interval' = '300ms'`,
      }),
      "local-inactivity.sql",
    );
    // 60k events 50 µs apart: event second 00 ends after ~1 s of the ~3 s run.
    const proc = startCli(["run", file, "--state-dir", join(dir, "local-inactivity-state"), "--checkpoint-interval", "100ms", "--quiet"]);
    let visibleAt: number | null = null;
    while (proc.exitCode === null) {
      const done = existsSync(join(out, "second=00")) && filesUnder(out).some((f) => f.includes("/second=00/") && !basename(f).startsWith("."));
      if (done && visibleAt === null) visibleAt = performance.now();
      await Bun.sleep(50);
    }
    expect(await proc.exited).toBe(0);
    // Well before the end (files still open at the end are finished only then).
    expect(visibleAt).not.toBeNull();
    expect(performance.now() - visibleAt!).toBeGreaterThan(700);
    const files = filesUnder(out);
    const { duckQuery } = await import("../../kit/duckdb.ts");
    const [got] = await duckQuery(`SELECT count(*) AS n, count(DISTINCT time) AS d FROM read_parquet([${files.map((f) => `'${f}'`).join(", ")}])`);
    const [expected] = await duckQuery(`SELECT count(*) AS n FROM read_json('${reference}', format = 'newline_delimited')`);
    expect([got!.n, got!.d]).toEqual([expected!.n, expected!.n]);
  });

  test("partitioned by a column: one directory per value, each file holding only its value", async () => {
    const out = join(dir, "local-fields");
    const sql = `
CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '0', message_count = '${EVENTS}', seed = '7', base_time = '2024-01-01T00:00:00Z');
CREATE TABLE out (shard BIGINT, auction BIGINT, price BIGINT) WITH (
  connector = 'filesystem', path = '${out}', format = 'parquet', 'partitioning.fields' = 'shard');
INSERT INTO out SELECT bid.auction % 3 AS shard, bid.auction, bid.price FROM nexmark WHERE bid IS NOT NULL;`;
    const r = await run(sql, "local-fields");
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const files = filesUnder(out);
    expect(new Set(files.map((f) => f.split("/").at(-2)))).toEqual(new Set(["shard=0", "shard=1", "shard=2"]));
    const { duckQuery } = await import("../../kit/duckdb.ts");
    for (const f of files) {
      const shard = Number(/shard=(\d)/.exec(f)![1]);
      expect(await duckQuery(`SELECT DISTINCT shard FROM read_parquet('${f}')`)).toEqual([{ shard: BigInt(shard) }]);
    }
    const [total] = await duckQuery(`SELECT count(*) AS n FROM read_parquet([${files.map((f) => `'${f}'`).join(", ")}])`);
    const [expected] = await duckQuery(`SELECT count(*) AS n FROM read_json('${reference}', format = 'newline_delimited')`);
    expect(total!.n).toBe(expected!.n);
  });
});

describe("filesystem sink on S3 (moto)", () => {
  const client = s3Client();

  test("the seed example works as written (credentials and endpoint from the AWS environment variables)", async () => {
    await client.send(new CreateBucketCommand({ Bucket: "runnel-demo" })).catch(() => {});
    const old = await listKeys(client, "runnel-demo", "bids/");
    if (old.length) await client.send(new DeleteObjectsCommand({ Bucket: "runnel-demo", Delete: { Objects: old.map((o) => ({ Key: o.key })) } }));
    const seed = `CREATE TABLE bids (
  time timestamp,
  auction bigint,
  bidder bigint,
  price bigint
) WITH (
  connector ='filesystem',
  path = 's3://runnel-demo/bids',
  format = 'parquet',
  parquet_compression = 'zstd',
  rollover_seconds = '60'
);`;
    // The statement is the one of the product's examples, character for character.
    expect(await Bun.file(join(import.meta.dir, "../../../examples/arroyo-0.5.sql")).text()).toContain(seed);
    const sql = `${seed}
CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '${RATE}', message_count = '${EVENTS}', seed = '7', base_time = '2024-01-01T00:00:00Z');
INSERT INTO bids SELECT bid.datetime AS time, bid.auction, bid.bidder, bid.price FROM nexmark WHERE bid IS NOT NULL;`;
    const r = await run(sql, "seed", { AWS_ENDPOINT_URL: S3_ENDPOINT, AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET, AWS_REGION: "us-east-1" });
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const keys = await listKeys(client, "runnel-demo", "bids/");
    expect(keys.length).toBe(1);
    expect(keys[0]!.key).toMatch(/^bids\/[0-9a-z]{13}-0-0\.parquet$/);
    const files = await download(client, "runnel-demo", "bids/", join(dir, "seed-download"));
    const [row] = await (await import("../../kit/duckdb.ts")).duckQuery(`
      SELECT (SELECT count(*) FROM read_parquet('${files[0]}')) AS n,
             (SELECT count(*) FROM read_json('${reference}', format = 'newline_delimited')) AS expected,
             (SELECT count(*) FROM (SELECT epoch_us(time), auction, bidder, price FROM read_parquet('${files[0]}')
                EXCEPT ALL SELECT epoch_us(CAST(time AS TIMESTAMPTZ)), auction, bidder, price FROM read_json('${reference}', format = 'newline_delimited',
                  columns = {time: 'VARCHAR', auction: 'BIGINT', bidder: 'BIGINT', price: 'BIGINT', channel: 'VARCHAR', url: 'VARCHAR', extra: 'VARCHAR'}))) AS extra`);
    expect(Number(row!.n)).toBe(Number(row!.expected));
    expect(Number(row!.extra)).toBe(0);
    expect(await listUploads(client, "runnel-demo")).toEqual([]);
  });

  test("a multi-part Parquet file checkpointed in its middle many times: one object of several 5 MiB parts, every row once", async () => {
    const bucket = await freshBucket(client);
    const r = await run(
      bidsSql({
        events: EVENTS,
        rate: RATE,
        sinkWith: `connector = 'filesystem', path = 's3://${bucket}/bids/', format = 'parquet', 'parquet.compression' = 'uncompressed',
          'storage.aws_endpoint' = '${S3_ENDPOINT}', 'storage.aws_access_key_id' = '${S3_KEY}', 'storage.aws_secret_access_key' = '${S3_SECRET}',
          'storage.aws_region' = 'eu-west-1', 'multipart.target_part_size' = '5MiB'`,
      }),
      "s3-parts",
      {},
      "200ms",
    );
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const keys = await listKeys(client, bucket);
    expect(keys.length).toBe(1);
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: keys[0]!.key }));
    // A multipart object's ETag ends in -<number of parts>.
    const parts = Number(/-(\d+)"?$/.exec(head.ETag ?? "")?.[1] ?? 0);
    expect(parts).toBeGreaterThanOrEqual(2);
    expect(keys[0]!.size).toBeGreaterThan(5 * 1024 * 1024);
    const files = await download(client, bucket, "", join(dir, "s3-parts-download"));
    await expectParquetEqualsReference(files, reference, dir);
    expect(await listUploads(client, bucket)).toEqual([]);
  });

  test("JSON lines on S3 (endpoint in the path: s3::http://host:port/bucket/prefix) partitioned by event time: every row once", async () => {
    const bucket = await freshBucket(client);
    const r = await run(
      bidsSql({
        events: EVENTS,
        rate: RATE,
        sinkWith: `connector = 'filesystem', path = 's3::${S3_ENDPOINT}/${bucket}/json', format = 'json', 'partitioning.time_pattern' = '%Y/%m/%d/%H%M%S',
          'storage.aws_access_key_id' = '${S3_KEY}', 'storage.aws_secret_access_key' = '${S3_SECRET}'`,
      }),
      "s3-json",
    );
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const keys = await listKeys(client, bucket);
    const partitions = new Set(keys.map((k) => k.key.split("/").slice(0, -1).join("/")));
    expect(partitions).toEqual(new Set(["json/2024/01/01/000000", "json/2024/01/01/000001"]));
    for (const k of keys) expect(k.key).toMatch(/\/[0-9a-z]{13}-0-\d+\.json$/);
    const files = await download(client, bucket, "", join(dir, "s3-json-download"));
    await expectJsonEqualsReference(files, reference, dir);
    expect(await listUploads(client, bucket)).toEqual([]);
  });
});
