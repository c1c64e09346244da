/**
 * The Kafka sink against a real broker: the seed's exactly-once statement,
 * at_least_once, record keys and timestamps, what a read_committed consumer
 * sees before and after a checkpoint, recovery aborting a crashed run's open
 * transactions, and the preflight errors (unreachable brokers, missing topic,
 * transaction timeout shorter than the checkpoint interval).
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, runCli, startCli, tempDir, writeSql } from "../../kit/cli.ts";
import { closeKafkaKit, createTopic, endOffsets, KAFKA, KAFKA_OPTS, produce, readAll, stableOffsets, startJob, testKafka, waitUntil } from "../../kit/kafka.ts";

setDefaultTimeout(90_000);
afterAll(closeKafkaKit);

/** A bounded source: `n` impulse events, one per millisecond of event time. */
const impulse = (n: number, rate = 2000) =>
  `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '${rate}', message_count = '${n}', start_time = '2024-01-01T00:00:00Z', event_time_interval = '1ms');`;

describe("kafka sink", () => {
  test("the seed's exactly-once sink statement, as written, writes every row once", async () => {
    const seed = readFileSync(join(REPO, "examples", "arroyo-0.5.sql"), "utf8");
    const statement = seed.slice(seed.indexOf("CREATE TABLE kafka_sink"), seed.indexOf(");", seed.indexOf("CREATE TABLE kafka_sink")) + 2);
    expect(statement).toContain("'sink.commit_mode' = 'exactly_once'");
    expect(statement).toContain("bootstrap_servers = 'localhost:9092'");
    const dir = tempDir("runnel-kafka-seed-");
    // As written it points at localhost:9092; with nothing there the job stops before starting, saying why.
    const asWritten = await runCli(["run", writeSql(dir, `${statement}\n${impulse(10)}\nINSERT INTO kafka_sink SELECT CAST(counter AS TEXT) AS user_id, CAST(subtask_index AS INT) AS count FROM impulse;`, "as-written.sql"), "--quiet"]);
    if (!KAFKA.startsWith("localhost:9092")) {
      expect(asWritten.code).toBe(1);
      expect(asWritten.stderr).toContain("table kafka_sink: cannot reach Kafka at 'localhost:9092' (option 'bootstrap_servers')");
    }
    // The same statement against the test broker.
    const admin = testKafka("seed-admin").admin();
    await admin.connect();
    if (!(await admin.listTopics()).includes("results")) await admin.createTopics({ topics: [{ topic: "results", numPartitions: 1 }], waitForLeaders: true });
    await admin.disconnect();
    const before = (await endOffsets("results"))[0]!.high;
    const sql = `${statement.replace("localhost:9092", KAFKA)}\n${impulse(500)}\nINSERT INTO kafka_sink SELECT CAST(counter AS TEXT) AS user_id, CAST(subtask_index AS INT) AS count FROM impulse;`;
    const r = await runCli(["run", writeSql(dir, sql), "--checkpoint-interval", "100ms", "--quiet"], { timeoutMs: 30_000 });
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const records = (await readAll("results", true)).filter((x) => x.offset >= before);
    expect(records.map((x) => JSON.parse(x.value).user_id)).toEqual(Array.from({ length: 500 }, (_, i) => String(i)));
  });

  test("at_least_once with sink.key_field and sink.timestamp_field", async () => {
    const topic = await createTopic("sink-alo", 3);
    const dir = tempDir("runnel-kafka-alo-");
    const sql = `${impulse(300)}
CREATE TABLE out (k TEXT, n BIGINT, t TIMESTAMP) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${topic}', type = 'sink', format = 'json',
  'sink.key_field' = 'k', 'sink.timestamp_field' = 't');
INSERT INTO out SELECT concat('key-', CAST(counter % 5 AS TEXT)) AS k, counter AS n, to_timestamp(counter) AS t FROM impulse;`;
    const r = await runCli(["run", writeSql(dir, sql), "--quiet"], { timeoutMs: 30_000 });
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const records = await readAll(topic, false);
    expect(records.length).toBe(300);
    for (const rec of records) {
      const v = JSON.parse(rec.value);
      expect(rec.key).toBe(`key-${v.n % 5}`);
      expect(rec.timestamp).toBe(v.n * 1000);
    }
    // Same key, same partition; in order within it.
    const partitionOf = new Map<string, number>();
    for (const rec of records) {
      expect(partitionOf.get(rec.key!) ?? rec.partition).toBe(rec.partition);
      partitionOf.set(rec.key!, rec.partition);
    }
    for (let p = 0; p < 3; p++) {
      const ns = records.filter((x) => x.partition === p).map((x) => JSON.parse(x.value).n);
      expect(ns).toEqual([...ns].sort((a, b) => a - b));
    }
  });

  test("format 'csv': one row per message, without a header, quoted where it must be", async () => {
    const topic = await createTopic("sink-csv", 1);
    const dir = tempDir("runnel-kafka-csv-");
    const sql = `${impulse(50)}
CREATE TABLE out (n BIGINT, s TEXT, gone TEXT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${topic}', type = 'sink', format = 'csv');
INSERT INTO out SELECT counter AS n, concat('a,"', CAST(counter AS TEXT)) AS s, CAST(NULL AS TEXT) AS gone FROM impulse;`;
    const r = await runCli(["run", writeSql(dir, sql), "--quiet"], { timeoutMs: 30_000 });
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const values = (await readAll(topic, false)).map((x) => x.value);
    expect(values).toEqual(Array.from({ length: 50 }, (_, n) => `${n},"a,""${n}",`));
  });

  test("exactly_once: records become visible to read_committed consumers only when their checkpoint completes", async () => {
    const topic = await createTopic("sink-eos-visibility", 1);
    const dir = tempDir("runnel-kafka-eos-");
    const sql = writeSql(
      dir,
      `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '200');
CREATE TABLE out (n BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${topic}', type = 'sink', format = 'json', 'sink.commit_mode' = 'exactly_once');
INSERT INTO out SELECT counter AS n FROM impulse;`,
    );
    // Checkpoints every 3 s: written records wait in an open transaction in between.
    const job = startJob([sql, "--checkpoint-interval", "3s", "--quiet", "--state-dir", join(dir, "state")]);
    await waitUntil("records written, uncommitted", async () => (await readAll(topic, false)).length >= 100, 20_000, 100);
    const committedEarly = (await readAll(topic, true)).length;
    const uncommitted = (await readAll(topic, false)).length;
    expect(committedEarly).toBeLessThan(uncommitted);
    await waitUntil("a commit", async () => (await readAll(topic, true)).length > committedEarly, 20_000);
    expect(await job.stop()).toBe(0);
    const all = (await readAll(topic, true)).map((x) => JSON.parse(x.value).n);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i));
  });

  test("exactly_once: the next start aborts a killed run's open transactions before writing anything, even with fewer subtasks", async () => {
    const topic = await createTopic("sink-eos-recover", 2);
    const dir = tempDir("runnel-kafka-recover-");
    const sink = `CREATE TABLE out (n BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${topic}', type = 'sink', format = 'json', 'sink.commit_mode' = 'exactly_once', 'sink.key_field' = 'n');`;
    const writing = writeSql(dir, `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '500', message_count = '3000');\n${sink}\nINSERT INTO out SELECT counter AS n FROM impulse;`, "writing.sql");
    // No checkpoint completes in the first run: everything it wrote is in open transactions.
    const first = startCli(["run", writing, "--state-dir", join(dir, "state-1"), "--checkpoint-interval", "5m", "--quiet", "--parallelism", "2"]);
    await waitUntil("records in open transactions", async () => (await readAll(topic, false)).length >= 200, 20_000, 100);
    first.kill("SIGKILL");
    await first.exited;
    // They hold back read_committed readers (the last stable offset stays behind)...
    expect((await stableOffsets(topic)).some((p) => p.stable < p.high)).toBe(true);
    expect((await readAll(topic, true)).length).toBe(0);
    // ...until a job with the same sink starts, even one that writes nothing and has fewer subtasks
    // (so the ids of subtask 1 are found by listing the broker's open transactions): its start aborts them.
    const silent = writeSql(dir, `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '1000', message_count = '5');\n${sink}\nINSERT INTO out SELECT counter AS n FROM impulse WHERE counter < 0;`, "silent.sql");
    const second = await runCli(["run", silent, "--state-dir", join(dir, "state-2"), "--quiet", "--parallelism", "1"], { timeoutMs: 60_000 });
    expect(second.stderr).not.toContain("error");
    expect(second.code).toBe(0);
    for (const p of await stableOffsets(topic)) expect(p.stable).toBe(p.high);
    expect((await readAll(topic, true)).length).toBe(0);
    // A full run then writes every record exactly once.
    const third = await runCli(["run", writing, "--state-dir", join(dir, "state-3"), "--checkpoint-interval", "200ms", "--quiet", "--parallelism", "2"], { timeoutMs: 60_000 });
    expect(third.stderr).not.toContain("error");
    expect(third.code).toBe(0);
    const ns = (await readAll(topic, true)).map((x) => JSON.parse(x.value).n).sort((a, b) => a - b);
    expect(ns).toEqual(Array.from({ length: 3000 * 2 }, (_, i) => Math.floor(i / 2)));
  });

  test("exactly_once: killed before committing with 2 subtasks, restored with 1: both subtasks' transactions are committed once", async () => {
    const input = await createTopic("sink-rescale-in", 4);
    const output = await createTopic("sink-rescale-out", 2);
    await produce(input, Array.from({ length: 2000 }, (_, i) => ({ partition: i % 4, value: JSON.stringify({ id: i }) })));
    const dir = tempDir("runnel-kafka-rescale-");
    const sql = writeSql(
      dir,
      `CREATE TABLE src (id BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${input}', type = 'source', format = 'json', 'source.offset' = 'earliest');
CREATE TABLE out (id BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${output}', type = 'sink', format = 'json', 'sink.commit_mode' = 'exactly_once');
INSERT INTO out SELECT id FROM src;`,
    );
    const args = (p: number) => ["run", sql, "--state-dir", join(dir, "state"), "--checkpoint-interval", "300ms", "--quiet", "--parallelism", String(p)];
    const crashed = startCli(args(2), undefined, { RUNNEL_CRASH_AT: "sink-before-commit:1" });
    await crashed.exited;
    expect(crashed.signalCode).toBe("SIGKILL");
    // Checkpoint 1 is complete, its two transactions are not committed.
    expect((await readAll(output, true)).length).toBe(0);
    expect((await readAll(output, false)).length).toBeGreaterThan(0);
    const job = startJob(args(1).slice(1));
    await waitUntil("every record", async () => (await readAll(output, true)).length >= 2000, 30_000);
    await Bun.sleep(500);
    expect(await job.stop()).toBe(0);
    const ids = (await readAll(output, true)).map((r) => JSON.parse(r.value).id).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    for (const p of await stableOffsets(output)) expect(p.stable).toBe(p.high);
  });

  test("wrong bootstrap servers or a missing topic fail before the job starts, saying what to fix", async () => {
    const dir = tempDir("runnel-kafka-errors-");
    const run = (options: string) =>
      runCli(["run", writeSql(dir, `${impulse(10)}\nCREATE TABLE out (n BIGINT) WITH (connector = 'kafka', ${options}, type = 'sink', format = 'json');\nINSERT INTO out SELECT counter AS n FROM impulse;`), "--quiet"], { timeoutMs: 40_000 });
    const unreachable = await run(`bootstrap_servers = '127.0.0.1:1', topic = 'x', connection_timeout = '500ms'`);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain("table out: cannot reach Kafka at '127.0.0.1:1' (option 'bootstrap_servers')");
    expect(unreachable.stderr).toContain("Check the address and that the brokers run");
    const missing = await run(`${KAFKA_OPTS}, topic = 'no-such-topic-${Date.now()}'`);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/topic 'no-such-topic-\d+' \(option 'topic'\) does not exist at '[^']+'; create it first/);
    // `runnel validate` plans offline; with --connect it runs the same checks.
    const validated = await runCli(["validate", writeSql(dir, `CREATE TABLE s (n BIGINT) WITH (connector = 'kafka', bootstrap_servers = '127.0.0.1:1', topic = 'x', format = 'json', connection_timeout = '500ms');\nSELECT * FROM s;`), "--connect"], { timeoutMs: 40_000 });
    expect(validated.code).toBe(1);
    expect(validated.stderr).toContain("table s: cannot reach Kafka at '127.0.0.1:1' (option 'bootstrap_servers')");
    const malformed = await runCli(["validate", writeSql(dir, `CREATE TABLE s (n BIGINT) WITH (connector = 'kafka', bootstrap_servers = 'localhost', topic = 'x', format = 'json');\nSELECT * FROM s;`)]);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain("'localhost' is not host:port");
  });

  test("a transaction timeout shorter than the checkpoint interval plus a restart, or above the broker's limit, is rejected", async () => {
    const topic = await createTopic("sink-timeout", 1);
    const dir = tempDir("runnel-kafka-timeout-");
    const sql = writeSql(
      dir,
      `${impulse(10)}\nCREATE TABLE out (n BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${topic}', type = 'sink', format = 'json', 'sink.commit_mode' = 'exactly_once', 'sink.transaction_timeout' = '90s');\nINSERT INTO out SELECT counter AS n FROM impulse;`,
    );
    const tooLong = await runCli(["run", sql, "--checkpoint-interval", "1m", "--quiet"]);
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toContain("option 'sink.transaction_timeout' (90 s) is shorter than the checkpoint interval (60 s) plus 60 s for a restart");
    const aboveBroker = await runCli(["run", writeSql(dir, readFileSync(sql, "utf8").replace("'90s'", "'20m'"), "above.sql"), "--checkpoint-interval", "10s", "--quiet"]);
    expect(aboveBroker.code).toBe(1);
    expect(aboveBroker.stderr).toContain("the broker refuses 'sink.transaction_timeout' (1200 s); it must not exceed the broker's transaction.max.timeout.ms");
    const fine = await runCli(["run", sql, "--checkpoint-interval", "10s", "--quiet"]);
    expect(fine.stderr).not.toContain("error");
    expect(fine.code).toBe(0);
    expect((await readAll(topic, true)).length).toBe(10);
  });

  test("sink.key_field naming no column is a planning error", async () => {
    const dir = tempDir("runnel-kafka-key-");
    const r = await runCli([
      "validate",
      writeSql(dir, `${impulse(1)}\nCREATE TABLE out (n BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = 'x', type = 'sink', format = 'json', 'sink.key_field' = 'm');\nINSERT INTO out SELECT counter AS n FROM impulse;`),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("option 'sink.key_field': no column 'm'; the columns are n");
  });
});
