/**
 * The Delta Lake sink on the S3 emulator (moto, which enforces conditional
 * writes: If-None-Match on PutObject): tables read back by delta-rs and
 * DuckDB's delta extension over S3 equal a reference run after kill -9 around
 * the log commit, and every data object is added once.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir, writeSql } from "../../kit/cli.ts";
import { expectReadersEqualReference, readTable, runPipeline } from "../../kit/lakehouse.ts";
import { dropBuckets, freshBucket, getObject, listKeys, listUploads, s3Client, S3_ENDPOINT, S3_KEY, S3_SECRET } from "../../kit/s3.ts";
import { bidsSql, referenceRows } from "../connector-filesystem/readback.ts";

setDefaultTimeout(180_000);
const EVENTS = 60_000;
const RATE = 30_000;
const client = s3Client();
let dir: string;
let reference: string;

beforeAll(async () => {
  dir = tempDir("runnel-delta-s3-");
  reference = await referenceRows(dir, EVENTS, RATE);
});
afterAll(async () => {
  await dropBuckets(client);
  rmSync(dir, { recursive: true, force: true });
});

const deltaWith = (bucket: string) =>
  `connector = 'delta', path = 's3://${bucket}/tables/bids', format = 'parquet', 'rolling_policy.file_size' = '400KB',
   'parquet.row_group_size' = '10000', 'partitioning.time_pattern' = 'second=%S', 'delta.checkpoint_interval' = '2',
   'storage.aws_endpoint' = '${S3_ENDPOINT}', 'storage.aws_access_key_id' = '${S3_KEY}', 'storage.aws_secret_access_key' = '${S3_SECRET}'`;

async function expectTableEqualsReference(bucket: string, name: string): Promise<void> {
  const prefix = join(dir, `${name}-read`);
  const { summary } = readTable(["delta", `s3://${bucket}/tables/bids`, prefix, S3_ENDPOINT]);
  await expectReadersEqualReference(prefix, ["deltalake", "duckdb"], reference, summary);
  // Each data object is added once, and every data object is in the log.
  const added: string[] = [];
  for (const { key } of await listKeys(client, bucket, "tables/bids/_delta_log/")) {
    if (!/\d{20}\.json$/.test(key)) continue;
    for (const line of Buffer.from(await getObject(client, bucket, key)).toString("utf8").split("\n")) {
      if (line.includes('"add"')) added.push(decodeURIComponent(JSON.parse(line).add.path));
    }
  }
  expect(added.length).toBe(new Set(added).size);
  const data = (await listKeys(client, bucket, "tables/bids/")).map((k) => k.key.slice("tables/bids/".length)).filter((k) => !k.startsWith("_delta_log/"));
  expect(data.sort()).toEqual(added.sort());
  expect(await listUploads(client, bucket)).toEqual([]);
}

describe("delta sink on S3 (moto)", () => {
  const scenarios: [string, string[]][] = [
    ["uninterrupted", []],
    ["killed after the data objects were completed, before the log commit", ["delta-before-log-commit:2"]],
    ["killed after the log commit, before it was acknowledged", ["delta-after-log-commit:2"]],
    ["killed after a multipart part upload, then during recovery", ["filesystem-after-part-upload-of-recoverable-file:1", "filesystem-recovery-before-complete:1"]],
  ];
  for (const [what, crashes] of scenarios) {
    test(`${what}: delta-rs and DuckDB read every row once, each object added once`, async () => {
      const bucket = await freshBucket(client, "runnel-delta");
      const name = `s3-${what.replace(/[^a-z0-9]+/gi, "-")}`;
      const sql = writeSql(dir, bidsSql({ events: EVENTS, rate: RATE, sinkWith: deltaWith(bucket) }), `${name}.sql`);
      for (const c of crashes) await runPipeline(sql, join(dir, `${name}-state`), c);
      await runPipeline(sql, join(dir, `${name}-state`), null);
      await expectTableEqualsReference(bucket, name);
    });
  }
});
