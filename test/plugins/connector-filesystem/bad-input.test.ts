/**
 * Bad filesystem sink settings fail at validation or at start with an error
 * that names the option at fault and says what to do.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { CLI, runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { dropBuckets, freshBucket, listKeys, RUNNEL_VENV, s3Client, S3_ENDPOINT, S3_KEY, S3_SECRET } from "../../kit/s3.ts";

afterAll(() => dropBuckets(s3Client()));
setDefaultTimeout(60_000);

const dir = tempDir("runnel-fs-bad-");

function pipeline(sinkWith: string, columns = "time TIMESTAMP, auction BIGINT, price BIGINT"): string {
  return `
CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '0', message_count = '1000');
CREATE TABLE out (${columns}) WITH (${sinkWith});
INSERT INTO out SELECT bid.datetime AS time, bid.auction, bid.price FROM nexmark WHERE bid IS NOT NULL;
`;
}

let n = 0;
async function runFails(verb: "validate" | "run", sinkWith: string) {
  const file = writeSql(dir, pipeline(sinkWith), `bad-${n++}.sql`);
  const args = verb === "run" ? ["run", file, "--state-dir", join(dir, `state-${n}`), "--quiet"] : ["validate", file];
  const r = await runCli(args);
  expect(r.code).not.toBe(0);
  return r.stderr;
}

const s3 = (path: string, extra = "") =>
  `connector = 'filesystem', path = '${path}', format = 'parquet', 'storage.aws_endpoint' = '${S3_ENDPOINT}',
   'storage.aws_access_key_id' = '${S3_KEY}', 'storage.aws_secret_access_key' = '${S3_SECRET}'${extra}`;

describe("filesystem sink: errors at validation", () => {
  test("an unknown Parquet compression lists the valid ones", async () => {
    const err = await runFails("validate", `connector = 'filesystem', path = '${dir}/x', format = 'parquet', 'parquet.compression' = 'lz4'`);
    expect(err).toContain("option 'compression' of format 'parquet': 'lz4' is not one of 'uncompressed', 'snappy', 'gzip', 'zstd'");
  });

  test("the Arroyo spelling parquet_compression is checked the same way", async () => {
    const err = await runFails("validate", `connector = 'filesystem', path = '${dir}/x', format = 'parquet', parquet_compression = 'brotli'`);
    expect(err).toContain("option 'parquet_compression' of format 'parquet': 'brotli' is not one of");
  });

  test("a part size under S3's 5 MiB minimum", async () => {
    const err = await runFails("validate", s3("s3://bucket/p", `, 'multipart.target_part_size' = '1MB'`));
    expect(err).toContain("option 'multipart.target_part_size' of connector 'filesystem': must be at least 5242880");
  });

  test("an unknown strftime directive", async () => {
    const err = await runFails("validate", `connector = 'filesystem', path = '${dir}/x', format = 'json', 'partitioning.time_pattern' = 'day=%Q'`);
    expect(err).toContain("option 'partitioning.time_pattern': unknown directive '%Q'");
  });

  test("a partition column the table does not have", async () => {
    const err = await runFails("validate", `connector = 'filesystem', path = '${dir}/x', format = 'json', 'partitioning.fields' = 'auction, colour'`);
    expect(err).toContain("option 'partitioning.fields' names column 'colour'");
  });

  test("an unsupported path scheme", async () => {
    const err = await runFails("validate", `connector = 'filesystem', path = 'ftp://host/dir', format = 'json'`);
    expect(err).toContain("option 'path': scheme of 'ftp://host/dir' is not supported; use a local directory, file:///dir, s3://bucket/prefix");
  });

  test("only one of the two keys", async () => {
    const err = await runFails("validate", `connector = 'filesystem', path = 's3://bucket/p', format = 'json', 'storage.aws_access_key_id' = 'k'`);
    expect(err).toContain("option 'storage.aws_secret_access_key' is missing");
  });
});

describe("filesystem sink: errors at start", () => {
  test("an unwritable local path", async () => {
    const err = await runFails("run", `connector = 'filesystem', path = '/etc/passwd/out', format = 'parquet'`);
    expect(err).toContain("cannot write to '/etc/passwd/out' (option 'path')");
  });

  test("gzip compression asked of Parquet points at parquet.compression", async () => {
    const err = await runFails("run", `connector = 'filesystem', path = '${dir}/gz', format = 'parquet', compression = 'gzip'`);
    expect(err).toContain("option 'compression' = 'gzip' is for record formats; Parquet compresses its pages: use parquet.compression");
  });

  test("a bucket that does not exist", async () => {
    const err = await runFails("run", s3("s3://runnel-no-such-bucket/out"));
    expect(err).toContain("bucket 'runnel-no-such-bucket' (option 'path') does not exist");
  });

  test("an S3 endpoint nobody listens on names storage.aws_endpoint", async () => {
    const err = await runFails("run", s3("s3://some-bucket/out").replace(S3_ENDPOINT, "http://127.0.0.1:9"));
    expect(err).toContain("cannot reach S3 at http://127.0.0.1:9 (option 'storage.aws_endpoint')");
  });

  test("no credentials anywhere says where to give them", async () => {
    const file = writeSql(dir, pipeline(`connector = 'filesystem', path = 's3://some-bucket/out', format = 'parquet', 'storage.aws_endpoint' = '${S3_ENDPOINT}'`), "no-creds.sql");
    const env: Record<string, string | undefined> = { ...process.env, AWS_EC2_METADATA_DISABLED: "true", AWS_SHARED_CREDENTIALS_FILE: join(dir, "none"), AWS_CONFIG_FILE: join(dir, "none") };
    for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"]) delete env[k];
    const proc = Bun.spawn(["bun", CLI, "run", file, "--state-dir", join(dir, "no-creds-state"), "--quiet"], { env, stdout: "pipe", stderr: "pipe" });
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect(code).not.toBe(0);
    expect(stderr).toContain("no AWS credentials for bucket 'some-bucket'; give options 'storage.aws_access_key_id' and 'storage.aws_secret_access_key', or set AWS_ACCESS_KEY_ID");
  });

  describe("against an S3 endpoint that checks credentials", () => {
    // A second moto server with authentication on: it knows no access key, so every key is wrong.
    let port = 0;
    let server: ReturnType<typeof Bun.spawn> | null = null;
    beforeAll(async () => {
      // A port the system says is free right now.
      const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
      port = probe.port;
      probe.stop(true);
      server = Bun.spawn([join(RUNNEL_VENV, "bin", "moto_server"), "-H", "127.0.0.1", "-p", String(port)], {
        env: { ...process.env, INITIAL_NO_AUTH_ACTION_COUNT: "0" },
        stdout: "ignore",
        stderr: "ignore",
      });
      for (let i = 0; i < 100; i++) {
        if (await fetch(`http://127.0.0.1:${port}/moto-api/`).then(() => true, () => false)) break;
        await Bun.sleep(100);
      }
    });
    afterAll(() => {
      server?.kill();
    });

    test("wrong credentials name the options to fix", async () => {
      const err = await runFails(
        "run",
        `connector = 'filesystem', path = 's3://some-bucket/out', format = 'parquet', 'storage.aws_endpoint' = 'http://127.0.0.1:${port}',
         'storage.aws_access_key_id' = 'AKIAWRONG', 'storage.aws_secret_access_key' = 'wrong'`,
      );
      expect(err).toContain("S3 refused the credentials for bucket 'some-bucket'");
      expect(err).toContain("check options 'storage.aws_access_key_id' and 'storage.aws_secret_access_key'");
    });
  });

  test("nothing is written by a run that failed to start", async () => {
    const client = s3Client();
    const bucket = await freshBucket(client);
    await runFails("run", s3(`s3://${bucket}/out`, `, compression = 'gzip'`));
    expect(await listKeys(client, bucket)).toEqual([]);
  });
});
