/**
 * The Kinesis sink against a real emulator (kinesalite): rows read back by a
 * plain consumer, partition keys from a column or random, every record sent
 * at a checkpoint however long the flush interval, the seed's Kinesis
 * statements as written (endpoint and credentials from the environment),
 * planning errors and a missing stream named. Partial failures (which the
 * emulator never produces) are driven by a stand-in client in the last test.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CreateStreamCommand, PutRecordsCommand, type KinesisClient } from "@aws-sdk/client-kinesis";
import { field, t } from "../../../core/plugin-api/index.ts";
import { kinesis } from "../../../plugins/connector-kinesis/index.ts";
import { KinesisSinkWriter } from "../../../plugins/connector-kinesis/sink.ts";
import jsonPlugin from "../../../plugins/format-json/index.ts";
import { REPO, runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { sinkContext } from "../kit.ts";
import {
  createStream,
  deleteStreams,
  KINESIS_ENDPOINT,
  KINESIS_OPTS,
  KINESIS_REGION,
  kinesisClient,
  putRecords,
  readStream,
  startJob,
  waitActive,
  waitUntil,
} from "../../kit/kinesis.ts";

setDefaultTimeout(60_000);
afterAll(deleteStreams);

/** A file of JSON lines read by single_file into a Kinesis sink; runs to the end of the file. */
async function writeFromFile(stream: string, rows: object[], extra = "", columns = "user_id TEXT, n BIGINT") {
  const dir = tempDir("runnel-kinesis-sink-");
  const input = join(dir, "in.jsonl");
  writeFileSync(input, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const sql = writeSql(
    dir,
    `CREATE TABLE src (${columns}) WITH (connector = 'single_file', path = '${input}', format = 'json', type = 'source');
CREATE TABLE dst (${columns}) WITH (connector = 'kinesis', ${KINESIS_OPTS}, stream_name = '${stream}', type = 'sink', format = 'json'${extra});
INSERT INTO dst SELECT * FROM src;`,
  );
  return runCli(["run", sql, "--quiet", "--checkpoint-interval", "300ms", "--state-dir", join(dir, "state")], { timeoutMs: 40_000 });
}

describe("kinesis sink", () => {
  test("rows reach the stream, read back by a consumer once each; one partition key, one shard", async () => {
    const stream = await createStream("sink-keyed", 3);
    const rows = Array.from({ length: 1200 }, (_, i) => ({ user_id: `user${i % 25}`, n: i }));
    const r = await writeFromFile(stream, rows, ", 'sink.partition_key_field' = 'user_id', 'sink.max_records_per_batch' = '100'");
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/error|warn/i);
    const got = await readStream(stream);
    expect(got.map((g) => JSON.parse(g.data).n).sort((a, b) => a - b)).toEqual(rows.map((x) => x.n));
    const shardOfKey = new Map<string, Set<string>>();
    for (const g of got) {
      const row = JSON.parse(g.data);
      expect(g.key).toBe(row.user_id);
      shardOfKey.set(g.key, (shardOfKey.get(g.key) ?? new Set()).add(g.shard));
    }
    for (const shards of shardOfKey.values()) expect(shards.size).toBe(1);
    expect(new Set(got.map((g) => g.shard)).size).toBe(3);
    // One key's rows are in the order they were written.
    const user0 = got.filter((g) => g.key === "user0").map((g) => JSON.parse(g.data).n);
    expect(user0).toEqual([...user0].sort((a, b) => a - b));
  });

  test("without a key column, random partition keys spread the records over the shards", async () => {
    const stream = await createStream("sink-random", 4);
    const rows = Array.from({ length: 400 }, (_, i) => ({ user_id: "same", n: i }));
    const r = await writeFromFile(stream, rows);
    expect(r.code).toBe(0);
    const got = await readStream(stream);
    expect(got.length).toBe(400);
    expect(new Set(got.map((g) => g.key)).size).toBe(400);
    expect(new Set(got.map((g) => g.shard)).size).toBe(4);
  });

  test("at-least-once: a checkpoint sends everything buffered, however long the flush interval", async () => {
    const from = await createStream("sink-ckpt-in", 1);
    const to = await createStream("sink-ckpt-out", 1);
    const dir = tempDir("runnel-kinesis-ckpt-");
    const sql = writeSql(
      dir,
      `CREATE TABLE src (user_id TEXT, n BIGINT) WITH (connector = 'kinesis', ${KINESIS_OPTS}, stream_name = '${from}', type = 'source', format = 'json', 'source.offset' = 'earliest');
CREATE TABLE dst (user_id TEXT, n BIGINT) WITH (connector = 'kinesis', ${KINESIS_OPTS}, stream_name = '${to}', type = 'sink', format = 'json', 'sink.flush_interval_millis' = '600000');
INSERT INTO dst SELECT * FROM src;`,
    );
    const job = startJob([sql, "--quiet", "--checkpoint-interval", "500ms", "--state-dir", join(dir, "state")]);
    await putRecords(from, Array.from({ length: 20 }, (_, i) => ({ data: JSON.stringify({ user_id: "u", n: i }) })));
    // Fewer than a batch, a 10-minute flush interval: only the checkpoint sends them.
    await waitUntil("20 records in the output stream", async () => (await readStream(to)).length >= 20, 15_000, 250);
    expect(await job.stop()).toBe(0);
    expect((await readStream(to)).map((g) => JSON.parse(g.data).n)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });

  test("kill -9 twice while records flow Kinesis → Kinesis: after a restart every record is in the output stream (duplicates allowed)", async () => {
    const from = await createStream("sink-crash-in", 2);
    const to = await createStream("sink-crash-out", 2);
    const dir = tempDir("runnel-kinesis-sink-crash-");
    const sql = writeSql(
      dir,
      `CREATE TABLE src (user_id TEXT, n BIGINT) WITH (connector = 'kinesis', ${KINESIS_OPTS}, stream_name = '${from}', type = 'source', format = 'json', 'source.offset' = 'earliest');
CREATE TABLE dst (user_id TEXT, n BIGINT) WITH (connector = 'kinesis', ${KINESIS_OPTS}, stream_name = '${to}', type = 'sink', format = 'json', 'sink.partition_key_field' = 'user_id');
INSERT INTO dst SELECT * FROM src;`,
    );
    const start = () => startJob([sql, "--quiet", "--parallelism", "2", "--checkpoint-interval", "300ms", "--state-dir", join(dir, "state")]);
    let next = 0;
    let producing = true;
    const producer = (async () => {
      while (producing) {
        await putRecords(from, Array.from({ length: 40 }, (_, i) => ({ data: JSON.stringify({ user_id: `u${(next + i) % 9}`, n: next + i }), key: `u${(next + i) % 9}` })));
        next += 40;
        await Bun.sleep(40);
      }
    })();
    const outCount = async () => (await readStream(to)).length;
    // The newest checkpoint manifest (chk-<id>[-<epoch>].json) anywhere under the state dir; 0 when none.
    const newestCheckpoint = () =>
      Math.max(0, ...(readdirSync(join(dir, "state"), { recursive: true }) as string[]).map((f) => /(?:^|\/)chk-(\d+)/.exec(f)?.[1]).filter(Boolean).map(Number));
    for (let round = 0; round < 2; round++) {
      const job = start();
      const before = await outCount();
      await waitUntil(`output to grow in round ${round}`, async () => (await outCount()) > before + 150, 20_000, 200);
      // A checkpoint completes while records flow before each kill, so the restart replays only what came after it:
      // on a loaded machine a 300 ms interval can otherwise pass with none, and the duplicate bound below would not hold.
      const seen = (() => {
        try {
          return newestCheckpoint();
        } catch {
          return 0;
        }
      })();
      await waitUntil(`a checkpoint after checkpoint ${seen} in round ${round}`, async () => newestCheckpoint() > seen, 20_000, 50);
      await Bun.sleep(100 + round * 170);
      await job.kill();
    }
    producing = false;
    await producer;
    const job = start();
    const all = async () => new Set((await readStream(to)).map((g) => JSON.parse(g.data).n));
    await waitUntil(`all ${next} records`, async () => (await all()).size >= next, 30_000, 250);
    expect(await job.stop()).toBe(0);
    const out = (await readStream(to)).map((g) => JSON.parse(g.data));
    expect([...new Set(out.map((r) => r.n))].sort((a, b) => a - b)).toEqual(Array.from({ length: next }, (_, i) => i));
    // Duplicates come only from what was sent after the last checkpoint before each kill.
    expect(out.length).toBeLessThan(next * 2);
    for (const r of out) expect(r.user_id).toBe(`u${r.n % 9}`);
  });

  test("the seed's Kinesis statements as written, with endpoint, region and keys from the environment", async () => {
    const client = kinesisClient();
    for (const name of ["my-source", "my-sink"]) {
      await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: 2 })).catch((e) => {
        if (e.name !== "ResourceInUseException") throw e;
      });
      await waitActive(name);
    }
    const seed = readFileSync(join(REPO, "examples", "arroyo-0.5.sql"), "utf8");
    const kinesisSql = seed.slice(seed.indexOf("CREATE TABLE kinesis_source"), seed.indexOf("-- Session window"));
    expect(kinesisSql).toContain("INSERT INTO kinesis_sink\nSELECT * from kinesis_source;");
    const dir = tempDir("runnel-kinesis-seed-");
    const sql = writeSql(dir, kinesisSql);
    const env = {
      AWS_ENDPOINT_URL_KINESIS: KINESIS_ENDPOINT,
      AWS_REGION: KINESIS_REGION,
      AWS_ACCESS_KEY_ID: "test-key",
      AWS_SECRET_ACCESS_KEY: "test-secret",
    };
    const job = startJob([sql, "--quiet", "--checkpoint-interval", "500ms", "--state-dir", join(dir, "state")], env);
    const tag = `run-${Date.now().toString(36)}`;
    const mine = async () => (await readStream("my-sink")).map((g) => JSON.parse(g.data)).filter((r) => String(r.user_id).startsWith(tag));
    // The source starts at 'latest' (Arroyo's default): knock until the job answers, then send the real records.
    let i = 0;
    await waitUntil("the job to pass records through", async () => {
      await putRecords("my-source", [{ data: JSON.stringify({ user_id: `${tag}-probe`, count: i++ }) }]);
      return (await mine()).length > 0;
    }, 20_000, 300);
    await putRecords("my-source", Array.from({ length: 50 }, (_, n) => ({ data: JSON.stringify({ user_id: `${tag}-u${n % 5}`, count: n }) })));
    await waitUntil("50 records in my-sink", async () => (await mine()).filter((r) => !r.user_id.endsWith("probe")).length >= 50, 15_000, 250);
    expect(await job.stop()).toBe(0);
    const out = (await mine()).filter((r) => !r.user_id.endsWith("probe"));
    expect(out.map((r) => r.count).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, n) => n));
    expect(out.every((r) => r.user_id === `${tag}-u${r.count % 5}`)).toBe(true);
  });

  test("a sink stream that does not exist is named with 'stream_name' before the job starts", async () => {
    const r = await writeFromFile("no-such-sink-stream", [{ user_id: "a", n: 1 }]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("kinesis stream 'no-such-sink-stream' (option 'stream_name') does not exist in region 'us-east-1'");
  });

  test("planning errors name the option: unknown key column, half the credentials, a bad stream name", async () => {
    const dir = tempDir("runnel-kinesis-plan-");
    const check = async (opts: string) => {
      const sql = writeSql(
        dir,
        `CREATE TABLE src (user_id TEXT) WITH (connector = 'single_file', path = '/nonexistent.jsonl', format = 'json', type = 'source');
CREATE TABLE dst (user_id TEXT) WITH (connector = 'kinesis', type = 'sink', format = 'json', ${opts});
INSERT INTO dst SELECT user_id FROM src;`,
      );
      return runCli(["validate", sql]);
    };
    const key = await check("stream_name = 's', 'sink.partition_key_field' = 'userid'");
    expect(key.code).toBe(2);
    expect(key.stderr).toContain("option 'sink.partition_key_field': no column 'userid'; the columns are user_id");
    const creds = await check("stream_name = 's', aws_access_key_id = 'k'");
    expect(creds.code).toBe(2);
    expect(creds.stderr).toContain("options 'aws_access_key_id' and 'aws_secret_access_key' go together");
    const name = await check("stream_name = 'no spaces'");
    expect(name.code).toBe(2);
    expect(name.stderr).toContain("option 'stream_name': 'no spaces' is not a Kinesis stream name");
    const missing = await check("aws_region = 'us-east-1'");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("stream_name");
  });

  test("records refused in a partial failure are sent again until accepted (stand-in client)", async () => {
    const accepted: string[] = [];
    let calls = 0;
    // Refuses every other record of the first two requests, as Kinesis does under throttling.
    const client = {
      async send(cmd: PutRecordsCommand) {
        calls++;
        const records = cmd.input.Records!;
        return {
          FailedRecordCount: 0,
          Records: records.map((r, i) => {
            if (calls <= 2 && i % 2 === 0) return { ErrorCode: "ProvisionedThroughputExceededException", ErrorMessage: "Rate exceeded for shard" };
            accepted.push(new TextDecoder().decode(r.Data));
            return { SequenceNumber: String(accepted.length), ShardId: "shardId-000000000000" };
          }),
        };
      },
      destroy() {},
    } as unknown as KinesisClient;
    const fields = [field("user_id", t.string()), field("n", t.bigint())];
    const json = jsonPlugin.formats!.find((f) => f.name === "json")!;
    const ctx = sinkContext(kinesis, { options: { stream_name: "s" }, fields, format: json.serializer!({ options: {}, fields }) });
    const writer = new KinesisSinkWriter(ctx, client);
    await writer.write({ rows: Array.from({ length: 10 }, (_, i) => ["u", i]), times: [] });
    await writer.prepareCommit(1);
    expect(accepted.map((a) => JSON.parse(a).n).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    expect(writer.retried).toBe(8); // 5 refused, then 3 of those 5
    expect(calls).toBe(3);
    await writer.close();
  });
});
