/**
 * Checkpoints on S3 (the moto emulator): a job stopped with SIGTERM and one
 * killed with kill -9 both resume from checkpoints stored as objects, with
 * the same output as an uninterrupted run; a missing bucket is named.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startCli, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";
import { freshBucket, listKeys, s3Client, S3_ENDPOINT, S3_KEY, S3_SECRET } from "../../kit/s3.ts";

setDefaultTimeout(120_000);

const AWS_ENV = { AWS_ENDPOINT_URL_S3: S3_ENDPOINT, AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET, AWS_REGION: "us-east-1" };
Object.assign(process.env, AWS_ENV);

const pipeline = (out: string) => `
CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '2000', message_count = '4000', event_time_interval = '10ms', start_time = '2024-01-01T00:00:00Z');
CREATE TABLE results WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO results SELECT tumble(INTERVAL '1' SECOND) AS window, count(*) AS n, sum(counter) AS total FROM impulse GROUP BY window;
`;
const lines = (f: string) => (existsSync(f) ? readFileSync(f, "utf8").split("\n").filter(Boolean) : []);

describe("checkpoints in s3://", () => {
  test("SIGTERM and kill -9 resume from checkpoints stored as objects", async () => {
    const client = s3Client();
    const bucket = await freshBucket(client, "runnel-ckpt");
    const dir = tempDir("runnel-s3-state-");
    const ref = join(dir, "ref.jsonl");
    expect((await runCli(["run", writeSql(dir, pipeline(ref), "ref.sql"), "--quiet"])).code).toBe(0);

    const out = join(dir, "out.jsonl");
    const sql = writeSql(dir, pipeline(out), "run.sql");
    const args = ["run", sql, "--state-dir", `s3://${bucket}/jobs/one`, "--checkpoint-interval", "200ms", "--quiet"];
    const first = startCli(args);
    // Stopped once it has checkpointed (its start takes a while on a loaded machine).
    await waitUntil("a checkpoint in the bucket", async () => (await listKeys(client, bucket, "jobs/one/checkpoints/")).length > 0);
    first.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    const keys = (await listKeys(client, bucket, "jobs/one/")).map((k) => k.key);
    expect(keys.some((k) => /^jobs\/one\/checkpoints\/chk-\d{10}(-\d+)?\.json$/.test(k))).toBe(true);

    const second = startCli(args);
    await Bun.sleep(700);
    second.kill("SIGKILL");
    await second.exited;

    const last = await runCli(args);
    expect(last.stderr).not.toContain("error");
    expect(last.code).toBe(0);
    expect(lines(out)).toEqual(lines(ref));
    // Old checkpoints are pruned: a few stay.
    expect((await listKeys(client, bucket, "jobs/one/checkpoints/")).length).toBeLessThanOrEqual(3);
  });

  test("a missing bucket is named, with what to do", async () => {
    const dir = tempDir("runnel-s3-missing-");
    const r = await runCli(["run", writeSql(dir, pipeline(join(dir, "o.jsonl"))), "--state-dir", "s3://no-such-bucket-runnel/x", "--quiet"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("bucket 'no-such-bucket-runnel' does not exist");
  });

  test("an unknown scheme lists what is available", async () => {
    const dir = tempDir("runnel-s3-scheme-");
    const r = await runCli(["run", writeSql(dir, pipeline(join(dir, "o.jsonl"))), "--state-dir", "gs://bucket/x", "--quiet"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("no storage plugin handles 'gs://'");
    expect(r.stderr).toContain("s3://");
  });
});
