/**
 * The RabbitMQ connector against a real broker: the source acknowledges only
 * at checkpoint completion (a stop leaves the queue empty, a kill leaves what
 * was not checkpointed in it), loses nothing through kill -9 while messages
 * arrive; the sink gets every row to the queue at least once through kill -9
 * (publisher confirms); unroutable messages and missing queues fail naming
 * the option.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { killWhilePublishing } from "../../kit/source-crash.ts";
import { closeRabbitKit, declareQueue, drainQueue, queueDepth, RABBITMQ_OPTS, sendAll, startJob, waitUntil } from "../../kit/rabbitmq.ts";
import { sinkUnderKills } from "../../kit/sink-crash.ts";

setDefaultTimeout(60_000);
afterAll(closeRabbitKit);

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);
const rowsOf = (file: string) => lines(file).map((l) => JSON.parse(l));
const messages = (from: number, n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ id: from + i, k: `key${(from + i) % 7}` }));

function pipeline(dir: string, queue: string, opts: { columns?: string; select?: string; parallelism?: number; extra?: string } = {}) {
  const out = join(dir, "out.jsonl");
  const sql = writeSql(
    dir,
    `CREATE TABLE src (${opts.columns ?? "id BIGINT, k TEXT"}) WITH (connector = 'rabbitmq', ${RABBITMQ_OPTS}, queue = '${queue}', type = 'source', format = 'json'${opts.extra ?? ""});
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out ${opts.select ?? "SELECT id, k FROM src"};`,
  );
  const args = [sql, "--checkpoint-interval", "200ms", "--parallelism", String(opts.parallelism ?? 2), "--quiet", "--state-dir", join(dir, "state")];
  return { start: (env: Record<string, string> = {}) => startJob(args, env), out, args };
}

describe("rabbitmq source", () => {
  test("two subtasks on one queue: every message once, with its metadata; a stop acknowledges the final checkpoint", async () => {
    const queue = await declareQueue("src-two");
    await sendAll(queue, messages(0, 300), { messageId: "m", timestamp: 1_700_000_000 });
    const dir = tempDir("runnel-rabbit-two-");
    const p = pipeline(dir, queue, {
      columns: "id BIGINT, k TEXT, rk TEXT METADATA FROM 'routing_key', mid TEXT METADATA FROM 'message_id', at TIMESTAMP METADATA FROM 'timestamp'",
      select: "SELECT id, rk, mid, at FROM src",
    });
    const job = p.start();
    await waitUntil("300 rows", () => lines(p.out).length >= 300);
    expect(await job.stop()).toBe(0);
    const rows = rowsOf(p.out);
    expect(rows.map((r) => r.id).sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(rows[0].rk).toBe(queue);
    expect(rows[0].mid).toBe("m");
    expect(Date.parse(rows[0].at)).toBe(1_700_000_000_000);
    await waitUntil("the consumers gone", async () => (await queueDepth(queue)).consumerCount === 0, 5_000);
    expect((await queueDepth(queue)).messageCount).toBe(0);
  });

  test("killed when a checkpoint completed, before its ack: the messages are still in the queue, and come back (at-least-once)", async () => {
    const queue = await declareQueue("src-window");
    await sendAll(queue, messages(0, 500));
    const dir = tempDir("runnel-rabbit-window-");
    const p = pipeline(dir, queue, { parallelism: 1 });
    const crashed = p.start({ RUNNEL_CRASH_AT: "rabbitmq-source-before-ack:1" });
    await crashed.proc.exited;
    expect(crashed.proc.signalCode).toBe("SIGKILL");
    // Nothing was acknowledged: the broker requeued all of it.
    await waitUntil("the requeue", async () => (await queueDepth(queue)).messageCount === 500, 5_000);
    const job = p.start();
    // The restored checkpoint's rows, then the broker's redelivery of the same messages: the stated at-least-once window.
    await waitUntil("the redelivered messages", () => lines(p.out).length >= 1000);
    expect(await job.stop()).toBe(0);
    expect(new Set(rowsOf(p.out).map((r) => r.id)).size).toBe(500);
    expect((await queueDepth(queue)).messageCount).toBe(0);
  });

  test("kill -9 while messages arrive: none is lost", async () => {
    const queue = await declareQueue("src-crash");
    const dir = tempDir("runnel-rabbit-crash-");
    const p = pipeline(dir, queue);
    const next = await killWhilePublishing({ start: () => p.start(), out: p.out, publish: (from, n) => sendAll(queue, messages(from, n)), growth: 200 });
    const job = p.start();
    await waitUntil(`all ${next} messages`, () => new Set(rowsOf(p.out).map((r) => r.id)).size >= next, 30_000);
    expect(await job.stop()).toBe(0);
  });

  test("a missing queue is refused before the job starts, naming 'queue'", async () => {
    const dir = tempDir("runnel-rabbit-refuse-");
    const r = await runCli(["run", ...pipeline(dir, `missing-${Date.now()}`).args]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("option 'queue'");
  });
});

describe("rabbitmq sink", () => {
  test("kill -9 three times: every row is in the queue at least once (publisher confirms at each checkpoint)", async () => {
    const queue = await declareQueue("sink-crash");
    const got: number[] = [];
    const report = await sinkUnderKills({
      sinkOptions: `connector = 'rabbitmq', ${RABBITMQ_OPTS}, queue = '${queue}', format = 'json'`,
      readIds: async () => {
        for (const m of await drainQueue(queue)) got.push(JSON.parse(m).id);
        return got;
      },
    });
    expect(report.missing).toEqual([]);
  });

  test("a routing key no queue is bound to fails the job with the broker's answer, naming the options", async () => {
    const dir = tempDir("runnel-rabbit-unroutable-");
    const sql = writeSql(
      dir,
      `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '0', message_count = '10');
CREATE TABLE out (id BIGINT) WITH (connector = 'rabbitmq', ${RABBITMQ_OPTS}, 'sink.exchange' = 'amq.direct', 'sink.routing_key' = 'nobody-${Date.now()}', type = 'sink', format = 'json');
INSERT INTO out SELECT CAST(counter AS BIGINT) AS id FROM imp;`,
    );
    const r = await runCli(["run", sql, "--quiet", "--state-dir", join(dir, "state")]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("no queue is bound to exchange 'amq.direct'");
    expect(r.stderr).toContain("'sink.routing_key'");
  });
});
