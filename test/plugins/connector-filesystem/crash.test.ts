/**
 * kill -9 at each dangerous point of the filesystem sink, then restart with
 * the same state directory: the committed files together hold every input
 * row exactly once (read by DuckDB and pyarrow), no multipart upload is left
 * open and no staging file remains. Each crash run must really die at its
 * point, so a point that is never reached fails the test.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import { startCli, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";
import { dropBuckets, freshBucket, listKeys, listUploads, s3Client, S3_ENDPOINT, S3_KEY, S3_SECRET } from "../../kit/s3.ts";
import { duckQuery } from "../../kit/duckdb.ts";
import { bidsSql, download, exceptBothWays, expectJsonEqualsReference, expectParquetEqualsReference, filesUnder, REF, referenceRows } from "./readback.ts";

afterAll(async () => {
  await dropBuckets(s3Client());
  rmSync(dir, { recursive: true, force: true });
});
setDefaultTimeout(180_000);

const EVENTS = 100_000;
const RATE = 30_000;
let dir: string;
let reference: string;

beforeAll(async () => {
  dir = tempDir("runnel-fs-crash-");
  reference = await referenceRows(dir, EVENTS, RATE);
});

/** Runs the pipeline once; `crashAt` makes it kill itself there (and it must). */
async function runOnce(sqlFile: string, stateDir: string, crashAt: string | null, parallelism = 1) {
  const env: Record<string, string> = crashAt ? { RUNNEL_CRASH_AT: crashAt } : {};
  const args = ["run", sqlFile, "--state-dir", stateDir, "--checkpoint-interval", "200ms", "--parallelism", String(parallelism), "--quiet"];
  const proc = startCli(args, undefined, env);
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (crashAt) {
    expect({ crashAt, signal: proc.signalCode, stderr: stderr.includes("error") ? stderr : "" }).toEqual({ crashAt, signal: "SIGKILL", stderr: "" });
  } else {
    expect(stderr).not.toContain("error");
    expect(code).toBe(0);
  }
}

/** Crash runs in order, then a clean run to the end. */
async function crashThenFinish(name: string, sinkWith: string, crashes: string[], afterCrashes?: () => Promise<void>) {
  const sql = writeSql(dir, bidsSql({ events: EVENTS, rate: RATE, sinkWith }), `${name}.sql`);
  const state = join(dir, `${name}-state`);
  for (const c of crashes) await runOnce(sql, state, c);
  await afterCrashes?.();
  await runOnce(sql, state, null);
}

const s3With = (bucket: string) =>
  `connector = 'filesystem', path = 's3://${bucket}/out', format = 'parquet', 'parquet.compression' = 'uncompressed',
   'rolling_policy.file_size' = '6MB', 'parquet.row_group_size' = '20000',
   'storage.aws_endpoint' = '${S3_ENDPOINT}', 'storage.aws_access_key_id' = '${S3_KEY}', 'storage.aws_secret_access_key' = '${S3_SECRET}'`;

describe("filesystem sink on S3: kill -9, stop and restart", () => {
  const client = s3Client();

  const scenarios: [string, string[]][] = [
    ["after a part upload, before the checkpoint covering it", ["filesystem-after-part-upload:2"]],
    ["after the checkpoint completed, before the upload's completion", ["filesystem-before-complete:1"]],
    ["between two completions of one commit", ["filesystem-after-complete:1"]],
    ["during rollover (last part uploaded, file not yet prepared)", ["filesystem-during-rollover:1"]],
    [
      "during recovery, twice: before and after finishing a checkpointed file",
      ["filesystem-after-part-upload-of-recoverable-file:1", "filesystem-recovery-before-complete:1", "filesystem-recovery-after-complete:1"],
    ],
  ];

  for (const [what, crashes] of scenarios) {
    test(`${what}: after restart every row once, no upload left open`, async () => {
      const bucket = await freshBucket(client);
      await crashThenFinish(`s3-${crashes.join("+").replace(/[^a-z0-9]+/gi, "-")}`, s3With(bucket), crashes);
      expect(await listUploads(client, bucket)).toEqual([]);
      const keys = await listKeys(client, bucket);
      for (const k of keys) expect(k.key).toMatch(/^out\/[0-9a-z]{13}-0-\d+\.parquet$/);
      const files = await download(client, bucket, "", join(dir, `${bucket}-download`));
      await expectParquetEqualsReference(files, reference, dir);
    });
  }

  test("JSON lines, killed after a part upload and again during recovery: every row once, no upload left open", async () => {
    const bucket = await freshBucket(client);
    await crashThenFinish(
      "s3-json",
      `connector = 'filesystem', path = 's3://${bucket}/json', format = 'json', 'rolling_policy.file_size' = '12MB',
       'storage.aws_endpoint' = '${S3_ENDPOINT}', 'storage.aws_access_key_id' = '${S3_KEY}', 'storage.aws_secret_access_key' = '${S3_SECRET}'`,
      ["filesystem-after-part-upload-of-recoverable-file:1", "filesystem-recovery-before-complete:1"],
    );
    expect(await listUploads(client, bucket)).toEqual([]);
    const files = await download(client, bucket, "", join(dir, `${bucket}-download`));
    await expectJsonEqualsReference(files, reference, dir);
  });

  test("stopped with SIGTERM twice and resumed: the files of all runs hold the input's first rows, each once", async () => {
    const bucket = await freshBucket(client);
    const sql = writeSql(dir, bidsSql({ events: EVENTS, rate: RATE, sinkWith: s3With(bucket) }), "s3-stop.sql");
    const state = join(dir, "s3-stop-state");
    // The newest completed checkpoint's id, from the manifests' names.
    const latest = () => {
      if (!existsSync(state)) return 0;
      const ids = readdirSync(state, { recursive: true }).map((f) => /chk-(\d{10})/.exec(basename(String(f)))?.[1]).filter(Boolean);
      return Math.max(0, ...ids.map(Number));
    };
    for (let i = 0; i < 2; i++) {
      const proc = startCli(["run", sql, "--state-dir", state, "--checkpoint-interval", "200ms", "--quiet"]);
      // Each run gets a few checkpoints in before it is stopped, however loaded the machine.
      const before = latest();
      await waitUntil("three more checkpoints", () => latest() >= before + 3);
      proc.kill("SIGTERM");
      const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
      expect(stderr).not.toContain("error");
      expect(code).toBe(0);
      // Everything the stopped run wrote is visible: nothing left open.
      expect(await listUploads(client, bucket)).toEqual([]);
    }
    const files = await download(client, bucket, "", join(dir, `${bucket}-download`));
    const q = `read_parquet([${files.map((f) => `'${f}'`).join(", ")}])`;
    const [r] = await duckQuery(`
      WITH got AS (SELECT epoch_us(time) AS t, auction, price FROM ${q}),
           ref AS (SELECT epoch_us(CAST(time AS TIMESTAMPTZ)) AS t, auction, price FROM read_json('${reference}', format = 'newline_delimited',
                     columns = {time: 'VARCHAR', auction: 'BIGINT', bidder: 'BIGINT', price: 'BIGINT', channel: 'VARCHAR', url: 'VARCHAR', extra: 'VARCHAR'})
                   WHERE t <= (SELECT max(t) FROM got))
      SELECT (SELECT count(*) FROM got) AS rows,
             (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM ref)) AS extra,
             (SELECT count(*) FROM (SELECT * FROM ref EXCEPT ALL SELECT * FROM got)) AS missing`);
    expect(Number(r!.rows)).toBeGreaterThan(0);
    expect({ extra: r!.extra, missing: r!.missing }).toEqual({ extra: 0n, missing: 0n });
  });

  test("an upload of ours that no checkpoint knows is aborted at restart; someone else's upload is left alone", async () => {
    const bucket = await freshBucket(client);
    const open = async (key: string) => {
      const u = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
      await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: u.UploadId, PartNumber: 1, Body: Buffer.alloc(1024) }));
      return u.UploadId!;
    };
    let foreign = "";
    await crashThenFinish("s3-orphans", s3With(bucket), ["filesystem-after-part-upload:1"], async () => {
      // As if a file had been opened after the last checkpoint, just before the kill.
      await open("out/0mx00000000ab-0-7.parquet");
      foreign = await open("out/someone-elses-file.parquet");
    });
    expect(await listUploads(client, bucket)).toEqual([{ key: "out/someone-elses-file.parquet", uploadId: foreign }]);
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: "out/someone-elses-file.parquet", UploadId: foreign }));
    const files = await download(client, bucket, "", join(dir, `${bucket}-download`));
    await expectParquetEqualsReference(files, reference, dir);
  });
  test("killed mid-file with 2 subtasks, restarted with 1: the one subtask finishes both subtasks' checkpointed files", async () => {
    const bucket = await freshBucket(client);
    const sql = writeSql(dir, bidsSql({ events: EVENTS, rate: RATE, sinkWith: s3With(bucket) }), "s3-rescale.sql");
    const state = join(dir, "s3-rescale-state");
    await runOnce(sql, state, "filesystem-after-part-upload:2", 2);
    await runOnce(sql, state, null, 1);
    expect(await listUploads(client, bucket)).toEqual([]);
    const files = await download(client, bucket, "", join(dir, `${bucket}-download`));
    // File names start with the writer's run id, which grows with the start time: the first run's come first.
    const runOf = (f: string) => basename(f).slice(0, 13);
    const firstRun = [...new Set(files.map(runOf))].sort().slice(0, 2);
    const sub0 = files.filter((f) => firstRun.includes(runOf(f)) && /-0-\d+\.parquet$/.test(f));
    const sub1 = files.filter((f) => firstRun.includes(runOf(f)) && /-1-\d+\.parquet$/.test(f));
    // Subtask 1's file, open at the checkpoint, was finished by the restarted subtask 0.
    expect(sub1.length).toBeGreaterThan(0);
    expect(sub0.length).toBeGreaterThan(0);
    const q = (fs: string[]) => `read_parquet([${fs.map((f) => `'${f}'`).join(", ")}])`;
    // The nexmark source resumes from split 0's position after a change of parallelism and does not
    // replay split 1 exactly, so past the smaller of the two checkpointed positions rows may be
    // missing or doubled by the source. Up to it, the checkpointed files must hold every row once.
    const [r] = await duckQuery(`
      WITH upto AS (SELECT least((SELECT max(epoch_us(time)) FROM ${q(sub0)}), (SELECT max(epoch_us(time)) FROM ${q(sub1)})) AS p),
           ref AS (SELECT epoch_us(CAST(time AS TIMESTAMPTZ)) AS t, auction, price FROM read_json('${reference}', format = 'newline_delimited',
                     columns = {time: 'VARCHAR', auction: 'BIGINT', bidder: 'BIGINT', price: 'BIGINT', channel: 'VARCHAR', url: 'VARCHAR', extra: 'VARCHAR'})
                   WHERE t <= (SELECT p FROM upto)),
           got AS (SELECT epoch_us(time) AS t, auction, price FROM ${q(files)} WHERE epoch_us(time) <= (SELECT p FROM upto))
      SELECT (SELECT count(*) FROM ref) AS rows,
             (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM ref)) AS extra,
             (SELECT count(*) FROM (SELECT * FROM ref EXCEPT ALL SELECT * FROM got)) AS missing`);
    expect(Number(r!.rows)).toBeGreaterThan(10_000);
    expect({ extra: r!.extra, missing: r!.missing }).toEqual({ extra: 0n, missing: 0n });
  });
});

describe("filesystem sink on local disk, killed with -9", () => {
  const scenarios: [string, string[]][] = [
    ["during rollover", ["filesystem-during-rollover:2"]],
    ["after the checkpoint completed, before the rename", ["filesystem-before-complete:1"]],
    ["mid-file, then during recovery", ["filesystem-commit-with-open-files:1", "filesystem-recovery-before-complete:1"]],
  ];
  for (const [what, crashes] of scenarios) {
    test(`${what}: after restart every row once, no staging file left`, async () => {
      const out = join(dir, `local-${crashes.join("+").replace(/[^a-z0-9]+/gi, "-")}`);
      await crashThenFinish(
        basename(out),
        `connector = 'filesystem', path = '${out}', format = 'parquet', 'rolling_policy.file_size' = '1MB', 'parquet.row_group_size' = '5000'`,
        crashes,
      );
      const files = filesUnder(out);
      expect(files.filter((f) => basename(f).startsWith("."))).toEqual([]);
      await expectParquetEqualsReference(files, reference, dir);
    });
  }

  test("gzip JSON lines killed mid-file: every row once, each file one valid gzip stream", async () => {
    const out = join(dir, "local-gzip");
    await crashThenFinish("local-gzip", `connector = 'filesystem', path = '${out}', format = 'json', compression = 'gzip', 'rolling_policy.file_size' = '1MB'`, [
      "sink-before-commit:4",
    ]);
    const files = filesUnder(out);
    expect(files.filter((f) => basename(f).startsWith("."))).toEqual([]);
    await expectJsonEqualsReference(files, reference, dir);
  });

  test("CSV killed mid-file, then during recovery: every row once, each file with one header, at its start", async () => {
    const out = join(dir, "local-csv");
    await crashThenFinish("local-csv", `connector = 'filesystem', path = '${out}', format = 'csv', 'rolling_policy.file_size' = '1MB'`, [
      "filesystem-commit-with-open-files:1",
      "filesystem-recovery-before-complete:1",
    ]);
    const files = filesUnder(out);
    expect(files.filter((f) => basename(f).startsWith("."))).toEqual([]);
    expect(files.length).toBeGreaterThan(1);
    const header = "time,auction,bidder,price,channel,url,extra";
    for (const f of files) {
      const lines = readFileSync(f, "utf8").split("\n");
      expect({ f, first: lines[0], headers: lines.filter((l) => l === header).length }).toEqual({ f, first: header, headers: 1 });
    }
    const csv = await exceptBothWays(
      `(SELECT epoch_us(time) AS time, auction, bidder, price, channel, url, extra FROM read_csv([${files.map((f) => `'${f}'`).join(", ")}], header = true,
        allow_quoted_nulls = false, columns = {time: 'TIMESTAMPTZ', auction: 'BIGINT', bidder: 'BIGINT', price: 'BIGINT', channel: 'VARCHAR', url: 'VARCHAR', extra: 'VARCHAR'}))`,
      REF(reference),
    );
    expect(csv).toEqual({ missing: 0, extra: 0, rows: csv.rows });
    expect(csv.rows).toBeGreaterThan(0);
  });

  test("a staging file of ours that no checkpoint knows is removed at restart; other files are left alone", async () => {
    const out = join(dir, "local-orphans");
    const ours = join(out, ".0mx00000000ab-0-7.parquet.inprogress");
    const theirs = join(out, ".someone-elses.parquet.inprogress");
    await crashThenFinish("local-orphans", `connector = 'filesystem', path = '${out}', format = 'parquet'`, ["sink-before-commit:2"], async () => {
      writeFileSync(ours, "partial");
      writeFileSync(theirs, "partial");
    });
    expect(existsSync(ours)).toBe(false);
    expect(existsSync(theirs)).toBe(true);
    rmSync(theirs);
    await expectParquetEqualsReference(filesUnder(out), reference, dir);
  });
});
