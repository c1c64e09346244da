/**
 * The Kafka source against a real broker: read modes against a transactional
 * producer, bad records, metadata columns, partitions spread over more
 * subtasks than there are (idle subtasks), partitions added while running,
 * and consumer-group offsets committed for monitoring.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Partitioners } from "kafkajs";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { addPartitions, closeKafkaKit, createTopic, KAFKA_OPTS, produce, startJob, testKafka, waitUntil } from "../../kit/kafka.ts";

setDefaultTimeout(90_000);
afterAll(closeKafkaKit);

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);

/** A Kafka table read into a single_file sink; returns the job and the output file. */
function readerPipeline(dir: string, topic: string, columns: string, select: string, extra = "", parallelism = 1) {
  const out = join(dir, "out.jsonl");
  const sql = writeSql(
    dir,
    `CREATE TABLE src (${columns}) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${topic}', type = 'source', format = 'json', 'source.offset' = 'earliest'${extra});
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out ${select};`,
  );
  const job = startJob([sql, "--checkpoint-interval", "200ms", "--parallelism", String(parallelism), "--quiet", "--state-dir", join(dir, "state")]);
  return { job, out };
}

describe("kafka source", () => {
  test("read_committed hides aborted and open transactions; read_uncommitted shows them", async () => {
    const topic = await createTopic("src-isolation", 1);
    const kafka = testKafka("txn-writer");
    const mk = (tid: string) => kafka.producer({ transactionalId: tid, maxInFlightRequests: 1, idempotent: true, createPartitioner: Partitioners.DefaultPartitioner });
    const p1 = mk(`${topic}-a`);
    const p2 = mk(`${topic}-b`);
    await p1.connect();
    await p2.connect();
    const send = (txn: { send: Function }, ids: number[], state: string) => txn.send({ topic, messages: ids.map((id) => ({ value: JSON.stringify({ id, state }) })) });
    const committed = await p1.transaction();
    await send(committed, [1, 2, 3], "committed");
    await committed.commit();
    const aborted = await p1.transaction();
    await send(aborted, [4, 5], "aborted");
    await aborted.abort();
    const committed2 = await p1.transaction();
    await send(committed2, [6], "committed");
    await committed2.commit();
    const open = await p2.transaction(); // left open while the jobs read
    await send(open, [7, 8], "open");
    await produce(topic, [{ value: JSON.stringify({ id: 9, state: "plain" }) }]);

    const read = async (mode: string, expected: number) => {
      const dir = tempDir("runnel-kafka-iso-");
      const { job, out } = readerPipeline(dir, topic, "id BIGINT, state TEXT", "SELECT id, state FROM src", `, 'source.read_mode' = '${mode}'`);
      await waitUntil(`${expected} records in ${mode}`, () => lines(out).length >= expected, 30_000);
      await Bun.sleep(600); // nothing more arrives
      expect(await job.stop()).toBe(0);
      return lines(out).map((l) => JSON.parse(l));
    };
    const uncommitted = await read("read_uncommitted", 9);
    expect(uncommitted.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The open transaction holds back everything after it (the last stable offset).
    const beforeCommit = await read("read_committed", 4);
    expect(beforeCommit.map((r) => r.id)).toEqual([1, 2, 3, 6]);

    await open.abort();
    const afterAbort = await read("read_committed", 5);
    expect(afterAbort.map((r) => r.id)).toEqual([1, 2, 3, 6, 9]);
    await p1.disconnect();
    await p2.disconnect();
  });

  test("bad records: 'drop' counts and skips them, 'fail' names topic, partition and offset", async () => {
    const topic = await createTopic("src-bad", 1);
    await produce(topic, [{ value: '{"id": 1}' }, { value: "{not json" }, { value: '{"id": 3}' }]);
    const dir = tempDir("runnel-kafka-bad-");
    const { job, out } = readerPipeline(dir, topic, "id BIGINT", "SELECT id FROM src", ", bad_data = 'drop'");
    await waitUntil("two good records", () => lines(out).length >= 2, 30_000);
    expect(await job.stop()).toBe(0);
    expect(lines(out).map((l) => JSON.parse(l).id)).toEqual([1, 3]);
    expect(job.stderr()).toContain(`dropped bad record in src at topic '${topic}' partition 0 offset 1`);

    const dir2 = tempDir("runnel-kafka-bad-");
    const out2 = join(dir2, "out.jsonl");
    const sql = writeSql(
      dir2,
      `CREATE TABLE src (id BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${topic}', type = 'source', format = 'json', 'source.offset' = 'earliest', bad_data = 'fail');
CREATE TABLE out WITH (connector = 'single_file', path = '${out2}', format = 'json', type = 'sink');
INSERT INTO out SELECT id FROM src;`,
    );
    const failed = await runCli(["run", sql, "--quiet"], { timeoutMs: 30_000 });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`bad record in source 'src' at topic '${topic}' partition 0 offset 1`);
    expect(failed.stderr).toContain("bad_data = 'drop'");
  });

  test("METADATA FROM columns carry offset, partition, topic, timestamp and key", async () => {
    const topic = await createTopic("src-meta", 2);
    await produce(topic, [
      { key: "a", value: '{"v": 1}', partition: 1, timestamp: "1700000000123" },
      { value: '{"v": 2}', partition: 0, timestamp: "1700000000456" },
    ]);
    const dir = tempDir("runnel-kafka-meta-");
    const { job, out } = readerPipeline(
      dir,
      topic,
      "v INT, o BIGINT METADATA FROM 'offset', p INT METADATA FROM 'partition', tp TEXT METADATA FROM 'topic', ts TIMESTAMP METADATA FROM 'timestamp', k TEXT METADATA FROM 'key'",
      "SELECT v, o, p, tp, ts, k FROM src",
    );
    await waitUntil("two records", () => lines(out).length >= 2, 30_000);
    expect(await job.stop()).toBe(0);
    const rows = lines(out).map((l) => JSON.parse(l)).sort((a, b) => a.v - b.v);
    expect(rows).toEqual([
      { v: 1, o: 0, p: 1, tp: topic, ts: "2023-11-14T22:13:20.123Z", k: "a" },
      { v: 2, o: 0, p: 0, tp: topic, ts: "2023-11-14T22:13:20.456Z", k: null },
    ]);
  });

  test("METADATA FROM an unknown key or with the wrong type is a planning error", async () => {
    const dir = tempDir("runnel-kafka-meta-");
    const sql = (col: string) =>
      writeSql(dir, `CREATE TABLE src (v INT, ${col}) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = 't', format = 'json');\nSELECT * FROM src;`);
    const unknown = await runCli(["validate", sql("o BIGINT METADATA FROM 'ofset'")]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("connector 'kafka' has no metadata 'ofset' (did you mean 'offset'?)");
    const wrongType = await runCli(["validate", sql("o TEXT METADATA FROM 'offset'")]);
    expect(wrongType.code).toBe(2);
    expect(wrongType.stderr).toContain("metadata 'offset' is BIGINT; declare the column as BIGINT");
  });

  test("a 4-partition topic read by 8 subtasks: subtasks without a partition are idle, windows close", async () => {
    const topic = await createTopic("src-idle", 4);
    const base = Date.parse("2024-01-01T00:00:00Z");
    const messages = [];
    // Two seconds of events on every partition, then one late-enough event per partition to close them.
    for (let i = 0; i < 400; i++) messages.push({ partition: i % 4, value: JSON.stringify({ id: i, t: new Date(base + i * 5).toISOString() }) });
    for (let p = 0; p < 4; p++) messages.push({ partition: p, value: JSON.stringify({ id: 1000 + p, t: new Date(base + 10_000).toISOString() }) });
    await produce(topic, messages);
    const dir = tempDir("runnel-kafka-idle-");
    // idle_micros is the default (5 minutes): only subtasks that own no partition are idle.
    const { job, out } = readerPipeline(
      dir,
      topic,
      "id BIGINT, t TIMESTAMP",
      "SELECT tumble(INTERVAL '1' SECOND) AS w, count(*) AS n FROM src GROUP BY w",
      ", event_time_field = 't'",
      8,
    );
    await waitUntil("both one-second windows", () => lines(out).length >= 2, 30_000);
    expect(await job.stop()).toBe(0);
    const windows = lines(out).map((l) => JSON.parse(l));
    expect(windows.slice(0, 2).map((w) => w.n)).toEqual([200, 200]);
  });

  test("a silent partition stops holding windows back after idle_micros", async () => {
    const topic = await createTopic("src-idle-partition", 2);
    const base = Date.parse("2024-01-01T00:00:00Z");
    const dir = tempDir("runnel-kafka-idle-");
    const { job, out } = readerPipeline(
      dir,
      topic,
      "id BIGINT, t TIMESTAMP",
      "SELECT tumble(INTERVAL '1' SECOND) AS w, count(*) AS n FROM src GROUP BY w",
      ", event_time_field = 't', idle_micros = '1s'",
    );
    // Partition 0 keeps getting records (10 ms of event time apart) for a few seconds; partition 1 never does.
    for (let i = 0; i < 350; i += 25) {
      await produce(topic, Array.from({ length: 25 }, (_, j) => ({ partition: 0, value: JSON.stringify({ id: i + j, t: new Date(base + (i + j) * 10).toISOString() }) })));
      await Bun.sleep(200);
    }
    await waitUntil("the first two windows", () => lines(out).length >= 2, 30_000);
    expect(await job.stop()).toBe(0);
    expect(lines(out).slice(0, 2).map((l) => JSON.parse(l).n)).toEqual([100, 100]);
  });

  test("partitions added while the job runs are read from their start", async () => {
    const topic = await createTopic("src-grow", 1);
    await produce(topic, [{ value: '{"id": 1}' }]);
    const dir = tempDir("runnel-kafka-grow-");
    const { job, out } = readerPipeline(dir, topic, "id BIGINT, o BIGINT METADATA FROM 'offset', p INT METADATA FROM 'partition'", "SELECT id, p, o FROM src", "", 2);
    await waitUntil("the first record", () => lines(out).length >= 1, 30_000);
    await addPartitions(topic, 3);
    await produce(topic, [{ value: '{"id": 2}', partition: 1 }, { value: '{"id": 3}', partition: 2 }]);
    await waitUntil("records of the new partitions", () => lines(out).length >= 3, 30_000);
    expect(await job.stop()).toBe(0);
    expect(lines(out).map((l) => JSON.parse(l)).sort((a, b) => a.id - b.id)).toEqual([
      { id: 1, p: 0, o: 0 },
      { id: 2, p: 1, o: 0 },
      { id: 3, p: 2, o: 0 },
    ]);
  });

  test("restarted from its checkpoint, the source reads on where it stopped; the group sees the checkpointed offsets", async () => {
    const topic = await createTopic("src-resume", 2);
    await produce(topic, Array.from({ length: 100 }, (_, i) => ({ value: JSON.stringify({ id: i }) })));
    const dir = tempDir("runnel-kafka-resume-");
    const groupId = `g-${topic}`;
    const first = readerPipeline(dir, topic, "id BIGINT", "SELECT id FROM src", `, 'source.group_id' = '${groupId}'`);
    await waitUntil("100 records", () => lines(first.out).length >= 100, 30_000);
    expect(await first.job.stop()).toBe(0);
    await produce(topic, Array.from({ length: 50 }, (_, i) => ({ value: JSON.stringify({ id: 100 + i }) })));
    const second = readerPipeline(dir, topic, "id BIGINT", "SELECT id FROM src", `, 'source.group_id' = '${groupId}'`);
    await waitUntil("150 records", () => lines(second.out).length >= 150, 30_000);
    await Bun.sleep(500);
    expect(await second.job.stop()).toBe(0);
    const ids = lines(second.out).map((l) => JSON.parse(l).id).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: 150 }, (_, i) => i));
    // Offsets reach the group after each completed checkpoint (monitoring only).
    const admin = testKafka("group-check").admin();
    await admin.connect();
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    await admin.disconnect();
    const total = offsets[0]!.partitions.reduce((s, p) => s + Number(p.offset), 0);
    expect(total).toBe(150);
  });
});
