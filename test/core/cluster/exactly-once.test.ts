/**
 * Exactly-once across worker processes: jobs at parallelism 3 on 3 worker
 * processes, one worker killed with SIGKILL at random moments (three times,
 * each answered by the job manager restoring the whole job from its last
 * completed checkpoint), leave output that independent readers find exactly
 * right: Kafka → Kafka read by Kafka's Java consumer (read_committed), Kafka →
 * Parquet on S3 read by DuckDB, and an updating aggregate upserted into
 * PostgreSQL compared with DuckDB's answer.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { SQL } from "bun";
import { Partitioners } from "kafkajs";
import { eventually, startJob, tempDir, writeSql } from "../../kit/cli.ts";
import { closeKafkaKit, createTopic, endOffsets, KAFKA_OPTS, readAll, testKafka } from "../../kit/kafka.ts";
import { readCommittedJava } from "../../kit/kafka-java.ts";
import { download } from "../../plugins/connector-filesystem/readback.ts";
import { dropBuckets, freshBucket, listUploads, s3Client, S3_ENDPOINT, S3_KEY, S3_SECRET } from "../../kit/s3.ts";
import { duckQuery } from "../../kit/duckdb.ts";
import { freshPostgresDatabase } from "../../kit/services.ts";
import { killWorkersAtRandom, seeded } from "./kill-worker.ts";

setDefaultTimeout(240_000);
afterAll(async () => {
  await closeKafkaKit();
  await dropBuckets(s3Client());
});

const WORKERS = 3;
const KILLS = 3;
const USERS = 40;
const clusterArgs = (sql: string, dir: string) => [sql, "--state-dir", join(dir, "state"), "--checkpoint-interval", "300ms", "--parallelism", "3", "--workers", String(WORKERS), "--quiet"];

/** Writes {id, user, seq, v} records to `topic`, keyed by user, until stopped; ids count from 0. */
async function feed(topic: string, perTick = 100) {
  const producer = testKafka("cluster-feed").producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const seqs = new Array(USERS).fill(0);
  let written = 0;
  let producing = true;
  const loop = (async () => {
    while (producing) {
      const messages = [];
      for (let i = 0; i < perTick; i++, written++) {
        const u = written % USERS;
        messages.push({ key: `u${u}`, value: JSON.stringify({ id: written, user: `u${u}`, seq: seqs[u]++, v: written }) });
      }
      await producer.send({ topic, messages, acks: -1 });
      await Bun.sleep(100);
    }
  })();
  return {
    async stop(): Promise<number> {
      producing = false;
      await loop;
      await producer.disconnect();
      return written;
    },
  };
}

/** Waits until the job's source has checkpointed (and told its consumer group) every input record. */
async function consumedEverything(topic: string, groupId: string) {
  const admin = testKafka("cluster-lag").admin();
  await admin.connect();
  try {
    const ends = await endOffsets(topic);
    await eventually("the job to checkpoint the whole input", async () => {
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      return ends.every((e) => Number(committed!.partitions.find((p) => p.partition === e.partition)?.offset ?? -1) >= e.high) || undefined;
    }, 120_000, 250);
  } finally {
    await admin.disconnect();
  }
}

describe("exactly-once through kill -9 of one worker process", () => {
  test("Kafka → Kafka: Kafka's Java read_committed consumer sees every output record once, in order per key", async () => {
    const input = await createTopic("cluster-eo-in", 3);
    const output = await createTopic("cluster-eo-out", 3);
    const dir = tempDir("runnel-cluster-kafka-");
    const sql = writeSql(dir, `
CREATE TABLE events (id BIGINT, user TEXT, seq BIGINT, v BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${input}', type = 'source', format = 'json',
  'source.offset' = 'earliest', 'source.read_mode' = 'read_committed');
CREATE TABLE results (user TEXT, seq BIGINT, doubled BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${output}', type = 'sink', format = 'json',
  'sink.commit_mode' = 'exactly_once', 'sink.key_field' = 'user');
INSERT INTO results SELECT user, seq, v * 2 AS doubled FROM events WHERE v % 4 <> 0;`);
    const feeder = await feed(input);
    const job = startJob(clusterArgs(sql, dir));
    const killed = await killWorkersAtRandom({ job, stateDir: join(dir, "state"), workers: WORKERS, kills: KILLS, random: seeded(20260311) });
    const written = await feeder.stop();
    const expected = written - Math.ceil(written / 4);
    // Progress only (the verdict is the Java reader's): wait for the output to be complete, then stop.
    await eventually("every output record", async () => (await readAll(output, true)).length >= expected || undefined, 120_000, 500);
    expect(await job.stop()).toBe(0);
    expect(killed.length).toBe(KILLS);
    expect(job.stderr()).toContain(`restore ${KILLS} of at most`);

    const records = await readCommittedJava(output);
    const perUser = new Map<string, { partitions: Set<number>; seqs: number[] }>();
    const wrong: string[] = [];
    for (const r of records) {
      const value = JSON.parse(r.value) as { user: string; seq: number; doubled: number };
      const v = value.seq * USERS + Number(value.user.slice(1));
      if (r.key !== value.user || value.doubled !== 2 * v) wrong.push(r.value);
      const e = perUser.get(value.user) ?? { partitions: new Set(), seqs: [] };
      e.partitions.add(r.partition);
      e.seqs.push(value.seq);
      perUser.set(value.user, e);
    }
    expect(wrong).toEqual([]);
    expect(records.length).toBe(expected);
    for (let u = 0; u < USERS; u++) {
      const want: number[] = [];
      for (let v = u; v < written; v += USERS) if (v % 4 !== 0) want.push((v - u) / USERS);
      const got = perUser.get(`u${u}`);
      // Each key in one partition (users whose every v is a multiple of 4 have no output).
      expect({ user: u, seqs: got?.seqs ?? [], partitions: got?.partitions.size ?? 0 }).toEqual({ user: u, seqs: want, partitions: want.length ? 1 : 0 });
    }
  });

  test("Kafka → Parquet on S3: DuckDB reads every row once from the committed files, no upload left open", async () => {
    const client = s3Client();
    const bucket = await freshBucket(client, "runnel-cluster");
    const input = await createTopic("cluster-pq-in", 3);
    const group = `runnel-cluster-pq-${Date.now().toString(36)}`;
    const dir = tempDir("runnel-cluster-parquet-");
    const sql = writeSql(dir, `
CREATE TABLE events (id BIGINT, user TEXT, seq BIGINT, v BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${input}', type = 'source', format = 'json',
  'source.offset' = 'earliest', 'source.group_id' = '${group}');
CREATE TABLE out (id BIGINT, user TEXT, tripled BIGINT) WITH (connector = 'filesystem', path = 's3://${bucket}/out', format = 'parquet',
  'rolling_policy.file_size' = '64KB', 'parquet.row_group_size' = '500',
  'storage.aws_endpoint' = '${S3_ENDPOINT}', 'storage.aws_access_key_id' = '${S3_KEY}', 'storage.aws_secret_access_key' = '${S3_SECRET}');
INSERT INTO out SELECT id, user, v * 3 AS tripled FROM events WHERE id % 5 <> 0;`);
    const feeder = await feed(input);
    const job = startJob(clusterArgs(sql, dir));
    const killed = await killWorkersAtRandom({ job, stateDir: join(dir, "state"), workers: WORKERS, kills: KILLS, random: seeded(4242) });
    const written = await feeder.stop();
    await consumedEverything(input, group);
    expect(await job.stop()).toBe(0);
    expect(killed.length).toBe(KILLS);
    expect(job.stderr()).toContain(`restore ${KILLS} of at most`);

    expect(await listUploads(client, bucket)).toEqual([]);
    const files = await download(client, bucket, "", join(dir, "download"));
    expect(files.length).toBeGreaterThan(3);
    const [r] = await duckQuery(`
      WITH got AS (SELECT id, user, tripled FROM read_parquet([${files.map((f) => `'${f}'`).join(", ")}])),
           want AS (SELECT i AS id, 'u' || (i % ${USERS}) AS user, 3 * i AS tripled FROM range(${written}) t(i) WHERE i % 5 <> 0)
      SELECT (SELECT count(*) FROM got) AS rows,
             (SELECT count(*) FROM (SELECT * FROM got EXCEPT ALL SELECT * FROM want)) AS extra,
             (SELECT count(*) FROM (SELECT * FROM want EXCEPT ALL SELECT * FROM got)) AS missing`);
    expect({ rows: Number(r!.rows), extra: Number(r!.extra), missing: Number(r!.missing) }).toEqual({ rows: written - Math.ceil(written / 5), extra: 0, missing: 0 });
  });

  test("updating aggregate → PostgreSQL (upsert): the table DuckDB computes, nothing left staged", async () => {
    const url = await freshPostgresDatabase("runnel_cluster");
    const db = new SQL(url);
    try {
      await db.unsafe(`CREATE TABLE per_key (k bigint PRIMARY KEY, n bigint NOT NULL, total bigint NOT NULL, top bigint NOT NULL)`);
      const PER_SUBTASK = 12_000;
      const dir = tempDir("runnel-cluster-pg-");
      const sql = writeSql(dir, `
CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '1000', message_count = '${PER_SUBTASK}');
CREATE TABLE out (k BIGINT, n BIGINT, total BIGINT, top BIGINT) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'per_key',
  sink.mode = 'upsert', sink.primary_key = 'k');
INSERT INTO out SELECT counter % 17 AS k, count(*) AS n, sum(counter + subtask_index) AS total, max(counter) AS top FROM impulse GROUP BY k;`);
      const job = startJob(clusterArgs(sql, dir));
      const killed = await killWorkersAtRandom({ job, stateDir: join(dir, "state"), workers: WORKERS, kills: KILLS, random: seeded(777) });
      const code = await job.proc.exited;
      expect({ code, stderr: code === 0 ? "" : job.stderr() }).toEqual({ code: 0, stderr: "" });
      // The source is bounded (12,000 per subtask at 1,000/s): every kill must land before it ends.
      expect(killed.length).toBe(KILLS);
      expect(job.stderr()).toContain(`restore ${KILLS} of at most`);

      const want = await duckQuery(`
        SELECT c % 17 AS k, count(*) AS n, sum(c + s) AS total, max(c) AS top
        FROM range(${PER_SUBTASK}) a(c), range(3) b(s) GROUP BY k ORDER BY k`);
      const got = await db.unsafe(`SELECT k::int, n::int, total::bigint AS total, top::int FROM per_key ORDER BY k`);
      expect(got.map((r: any) => ({ ...r, total: Number(r.total) }))).toEqual(want.map((r) => ({ k: Number(r.k), n: Number(r.n), total: Number(r.total), top: Number(r.top) })));
      const [staged] = await db.unsafe(`SELECT count(*)::int AS n FROM runnel_sink_staging`);
      expect(staged.n).toBe(0);
    } finally {
      await db.close();
    }
  });
});
