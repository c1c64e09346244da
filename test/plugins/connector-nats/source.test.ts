/**
 * The NATS source against a real nats-server with JetStream: a durable
 * consumer shared by two subtasks reads every message once; kill -9 while
 * messages arrive and a restart still gives each message once (acknowledged
 * only at checkpoint completion, redeliveries of what state holds dropped);
 * a stop acknowledges its final checkpoint; lag and acknowledgements reported;
 * NATS Core subjects; refusals naming the option.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { killWhilePublishing } from "../../kit/source-crash.ts";
import { field, t } from "../../../core/plugin-api/index.ts";
import { nats } from "../../../plugins/connector-nats/index.ts";
import { json as jsonFormat } from "../../../plugins/format-json/index.ts";
import { coerce, createReader, drain } from "../kit.ts";
import { NATS_SERVERS, closeNatsKit, consumerInfo, createStream, NATS_OPTS, natsConnection, publish, startJob, waitUntil } from "../../kit/nats.ts";

setDefaultTimeout(60_000);
afterAll(closeNatsKit);

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);
const rowsOf = (file: string) => lines(file).map((l) => JSON.parse(l));

function pipeline(dir: string, source: string, opts: { columns?: string; select?: string; parallelism?: number; interval?: string } = {}) {
  const out = join(dir, "out.jsonl");
  const sql = writeSql(
    dir,
    `CREATE TABLE src (${opts.columns ?? "id BIGINT, k TEXT"}) WITH (connector = 'nats', ${NATS_OPTS}, ${source}, type = 'source', format = 'json');
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out ${opts.select ?? "SELECT id, k FROM src"};`,
  );
  const args = [sql, "--checkpoint-interval", opts.interval ?? "200ms", "--parallelism", String(opts.parallelism ?? 2), "--quiet", "--state-dir", join(dir, "state")];
  return { start: () => startJob(args), out, sql, args };
}

const messages = (from: number, n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ id: from + i, k: `key${(from + i) % 7}` }));

describe("nats source (JetStream)", () => {
  test("two subtasks share one durable consumer: every message once, with its subject and stream sequence", async () => {
    const stream = await createStream("src_two");
    await publish(`${stream}.a`, messages(0, 150));
    await publish(`${stream}.b`, messages(150, 150));
    const dir = tempDir("runnel-nats-two-");
    const p = pipeline(dir, `stream = '${stream}'`, {
      columns: "id BIGINT, k TEXT, subj TEXT METADATA FROM 'subject', seq BIGINT METADATA FROM 'sequence'",
      select: "SELECT id, subj, seq FROM src",
    });
    const job = p.start();
    await waitUntil("300 rows", () => lines(p.out).length >= 300);
    expect(await job.stop()).toBe(0);
    const rows = rowsOf(p.out);
    expect(rows.map((r) => r.id).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    for (const r of rows) {
      expect(r.subj).toBe(`${stream}.${r.id < 150 ? "a" : "b"}`);
      expect(r.seq).toBe(r.id + 1);
    }
    // The stop's final checkpoint was acknowledged: nothing is pending at the server.
    const info = await consumerInfo(stream, "runnel-src");
    expect(info.num_ack_pending).toBe(0);
    expect(info.ack_floor.stream_seq).toBe(300);
  });

  test("kill -9 while messages arrive, then restart: each message is in the output once", async () => {
    const stream = await createStream("src_crash");
    const dir = tempDir("runnel-nats-crash-");
    // A short ack_wait so the server redelivers what the killed runs held within the test.
    const p = pipeline(dir, `stream = '${stream}', 'consumer.ack_wait' = '2s'`);
    const total = await killWhilePublishing({ start: () => p.start(), out: p.out, publish: (from, n) => publish(`${stream}.x`, messages(from, n)), growth: 200 });
    const job = p.start();
    await waitUntil(`all ${total} messages`, () => lines(p.out).length >= total, 30_000);
    await Bun.sleep(2500); // past ack_wait: a redelivery of something already in state would show up as a duplicate
    expect(await job.stop()).toBe(0);
    const ids = rowsOf(p.out).map((r) => r.id);
    expect(ids.length).toBe(total);
    expect(new Set(ids).size).toBe(total);
  });

  test("killed after a checkpoint completed but before its acknowledgements left: the redelivered messages are dropped, not counted twice", async () => {
    const stream = await createStream("src_window");
    await publish(`${stream}.x`, messages(0, 2000));
    const dir = tempDir("runnel-nats-window-");
    const p = pipeline(dir, `stream = '${stream}', 'consumer.ack_wait' = '2s', 'consumer.max_batch' = '100'`, { parallelism: 1 });
    // Killed when the first checkpoint is durable, before the source acknowledges what it holds.
    const crashed = startJob(p.args, { RUNNEL_CRASH_AT: "nats-source-before-ack:1" });
    expect(await crashed.proc.exited).not.toBe(0);
    expect(crashed.proc.signalCode).toBe("SIGKILL");
    const job = p.start();
    await waitUntil("2000 rows", () => lines(p.out).length >= 2000, 30_000);
    await Bun.sleep(2500);
    expect(await job.stop()).toBe(0);
    const ids = rowsOf(p.out).map((r) => r.id);
    expect(ids.length).toBe(2000);
    expect(new Set(ids).size).toBe(2000);
  });

  test("a job started after a stop reads only what came meanwhile", async () => {
    const stream = await createStream("src_resume");
    await publish(`${stream}.x`, messages(0, 100));
    const dir = tempDir("runnel-nats-resume-");
    const p = pipeline(dir, `stream = '${stream}'`, { parallelism: 1 });
    let job = p.start();
    await waitUntil("100 rows", () => lines(p.out).length >= 100);
    expect(await job.stop()).toBe(0);
    await publish(`${stream}.x`, messages(100, 50));
    job = p.start();
    await waitUntil("150 rows", () => lines(p.out).length >= 150);
    await Bun.sleep(300);
    expect(await job.stop()).toBe(0);
    expect(rowsOf(p.out).map((r) => r.id)).toEqual(Array.from({ length: 150 }, (_, i) => i));
  });

  test("'consumer.filter_subjects' reads only those subjects; 'source.offset' = 'latest' skips what was stored", async () => {
    const stream = await createStream("src_filter");
    await publish(`${stream}.old`, messages(0, 10));
    const dir = tempDir("runnel-nats-filter-");
    const p = pipeline(dir, `stream = '${stream}', 'consumer.filter_subjects' = '${stream}.keep,${stream}.old', 'source.offset' = 'latest'`, { parallelism: 1 });
    const job = p.start();
    await waitUntil("the consumer", async () => (await consumerInfo(stream, "runnel-src").catch(() => null)) !== null);
    await publish(`${stream}.keep`, messages(10, 5));
    await publish(`${stream}.drop`, messages(15, 5));
    await publish(`${stream}.old`, messages(20, 5));
    await waitUntil("10 rows", () => lines(p.out).length >= 10);
    await Bun.sleep(300);
    expect(await job.stop()).toBe(0);
    expect(rowsOf(p.out).map((r) => r.id).sort((a, b) => a - b)).toEqual([10, 11, 12, 13, 14, 20, 21, 22, 23, 24]);
  });

  test("a missing stream and an ack_wait shorter than the checkpoint interval are refused before the job starts, naming the option", async () => {
    const dir = tempDir("runnel-nats-refuse-");
    const missing = pipeline(dir, `stream = 'no_such_stream_${Date.now()}'`);
    const r1 = await runCli(["run", ...missing.args]);
    expect(r1.code).not.toBe(0);
    expect(r1.stderr).toContain("option 'stream'");
    const stream = await createStream("src_refuse");
    const short = pipeline(dir, `stream = '${stream}', 'consumer.ack_wait' = '1s'`, { interval: "5s" });
    const r2 = await runCli(["run", ...short.args]);
    expect(r2.code).not.toBe(0);
    expect(r2.stderr).toContain("option 'consumer.ack_wait'");
    const both = pipeline(dir, `stream = '${stream}', subject = 'x'`);
    const r3 = await runCli(["run", ...both.args]);
    expect(r3.code).not.toBe(0);
    expect(r3.stderr).toContain("either option 'stream'");
  });
});

describe("nats source metrics", () => {
  test("the reader reports messages, bytes, lag at the consumer and acknowledgements, and acknowledges only at checkpoint completion", async () => {
    const stream = await createStream("src_metrics");
    await publish(`${stream}.x`, messages(0, 300));
    const { reader, metrics } = await createReader(nats, {
      options: { servers: NATS_SERVERS, stream, "consumer.max_batch": "100", "consumer.name": "metrics" },
      fields: [field("id", t.bigint()), field("k", t.string())],
      format: jsonFormat.deserializer!({ options: coerce(jsonFormat.options, {}), fields: [field("id", t.bigint()), field("k", t.string())] }),
    });
    try {
      const first = await drain(reader, 100);
      expect(first.rows.length).toBeGreaterThanOrEqual(100);
      await waitUntil("lag reported", () => (metrics.lag ?? 0) >= 300 - first.rows.length && (metrics.ack_pending ?? 0) > 0, 5_000);
      const rest = await drain(reader, 300 - first.rows.length);
      expect(first.rows.length + rest.rows.length).toBe(300);
      expect(metrics.messages_received_total).toBe(300);
      expect(metrics.bytes_received_total).toBe(messages(0, 300).reduce((n, m) => n + m.length, 0));
      reader.snapshot();
      // Not acknowledged before the checkpoint completes.
      expect((await consumerInfo(stream, "metrics")).num_ack_pending).toBe(300);
      await reader.onCheckpointComplete!(1);
      expect(metrics.acks_total).toBe(300);
      await waitUntil("the acknowledgements applied", async () => (await consumerInfo(stream, "metrics")).num_ack_pending === 0, 5_000);
      await waitUntil("lag 0", () => metrics.lag === 0 && metrics.ack_pending === 0, 5_000);
    } finally {
      await reader.close!();
    }
  });
});

describe("nats source (Core)", () => {
  test("a subject is read while the job runs (at-most-once: what was published before is not there)", async () => {
    const subject = `core_${Date.now().toString(36)}`;
    const nc = await natsConnection();
    nc.publish(subject, JSON.stringify({ id: -1, k: "before" }));
    const dir = tempDir("runnel-nats-core-");
    const p = pipeline(dir, `subject = '${subject}'`);
    const job = p.start();
    // Published until the subscription is in place, then a known tail.
    let i = 0;
    await waitUntil("the first row", async () => {
      nc.publish(subject, JSON.stringify({ id: 1000 + i++, k: "probe" }));
      await nc.flush();
      return lines(p.out).length > 0;
    });
    for (const m of messages(0, 50)) nc.publish(subject, m);
    await nc.flush();
    await waitUntil("the 50 rows", () => rowsOf(p.out).filter((r) => r.id < 1000).length >= 50);
    expect(await job.stop()).toBe(0);
    const ids = rowsOf(p.out).map((r) => r.id);
    expect(ids).not.toContain(-1);
    expect(ids.filter((id) => id < 1000).sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });
});
