/**
 * The MQTT source against Mosquitto: QoS 2 through kill -9 gives each message
 * once (acknowledgements held until checkpoints complete, redeliveries of
 * what state holds dropped); QoS 1 through kill -9 loses nothing; a shared
 * subscription spreads messages over two subtasks; QoS 0 reads what arrives
 * while it runs; a wrong broker address is refused naming 'url'.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { killWhilePublishing } from "../../kit/source-crash.ts";
import { closeMqttKit, MQTT_OPTS, mqttClient, publishAll, startJob, uniqueTopic, waitUntil } from "../../kit/mqtt.ts";

setDefaultTimeout(60_000);
afterAll(closeMqttKit);

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);
const rowsOf = (file: string) => lines(file).map((l) => JSON.parse(l));
const messages = (from: number, n: number) => Array.from({ length: n }, (_, i) => JSON.stringify({ id: from + i, k: `key${(from + i) % 7}` }));

function pipeline(dir: string, topic: string, extra: string, opts: { columns?: string; select?: string; parallelism?: number } = {}) {
  const out = join(dir, "out.jsonl");
  const prefix = `runnel-${dir.split("/").pop()}`;
  const sql = writeSql(
    dir,
    `CREATE TABLE src (${opts.columns ?? "id BIGINT, k TEXT"}) WITH (connector = 'mqtt', ${MQTT_OPTS}, topic = '${topic}', client_prefix = '${prefix}', type = 'source', format = 'json'${extra});
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out ${opts.select ?? "SELECT id, k FROM src"};`,
  );
  const args = [sql, "--checkpoint-interval", "200ms", "--parallelism", String(opts.parallelism ?? 1), "--quiet", "--state-dir", join(dir, "state")];
  return { start: (env: Record<string, string> = {}) => startJob(args, env), out, args };
}

/** Publishes until the job's output shows it is subscribed (the probes have ids from 1,000,000). */
async function untilSubscribed(topic: string, out: string, qos: 0 | 1 | 2): Promise<void> {
  const c = await mqttClient();
  let i = 0;
  await waitUntil("the subscription", async () => {
    await publishAll(c, topic, [JSON.stringify({ id: 1_000_000 + i++, k: "probe" })], qos);
    return lines(out).length > 0;
  });
}

async function crashRounds(topic: string, p: ReturnType<typeof pipeline>, qos: 1 | 2): Promise<number> {
  const c = await mqttClient();
  return killWhilePublishing({ start: () => p.start(), out: p.out, publish: (from, n) => publishAll(c, topic, messages(from, n), qos) });
}

describe("mqtt source", () => {
  test("QoS 2, kill -9 while messages arrive (published also while the job is down): each message once", async () => {
    const topic = uniqueTopic("qos2-crash");
    const dir = tempDir("runnel-mqtt-q2-");
    const p = pipeline(dir, topic, ", qos = 'ExactlyOnce'");
    // The first run creates the persistent session; from then on the broker queues for it.
    const first = p.start();
    await untilSubscribed(topic, p.out, 2);
    await first.kill();
    const total = await crashRounds(topic, p, 2);
    const job = p.start();
    await waitUntil(`all ${total} messages`, () => rowsOf(p.out).filter((r) => r.id < 1_000_000).length >= total, 30_000);
    await Bun.sleep(500);
    expect(await job.stop()).toBe(0);
    const ids = rowsOf(p.out).map((r) => r.id).filter((id) => id < 1_000_000);
    expect(ids.length).toBe(total);
    expect(new Set(ids).size).toBe(total);
  });

  test("QoS 2, killed after a checkpoint completed but before its PUBRECs went out: the redeliveries are dropped", async () => {
    const topic = uniqueTopic("qos2-window");
    const dir = tempDir("runnel-mqtt-q2w-");
    const p = pipeline(dir, topic, ", qos = 'ExactlyOnce'");
    const first = p.start();
    await untilSubscribed(topic, p.out, 2);
    expect(await first.stop()).toBe(0);
    const probes = lines(p.out).length;
    const c = await mqttClient();
    await publishAll(c, topic, messages(0, 1000), 2);
    // The job reads the queued messages; the first checkpoint holding them completes, then the kill.
    const crashed = p.start({ RUNNEL_CRASH_AT: "mqtt-source-before-ack:1" });
    await crashed.proc.exited;
    expect(crashed.proc.signalCode).toBe("SIGKILL");
    const job = p.start();
    await waitUntil("1000 messages", () => lines(p.out).length >= probes + 1000, 20_000);
    await Bun.sleep(800);
    expect(await job.stop()).toBe(0);
    const ids = rowsOf(p.out).map((r) => r.id).filter((id) => id < 1_000_000);
    expect(ids.length).toBe(1000);
    expect(new Set(ids).size).toBe(1000);
  });

  test("QoS 1, kill -9 while messages arrive: none is lost (duplicates possible)", async () => {
    const topic = uniqueTopic("qos1-crash");
    const dir = tempDir("runnel-mqtt-q1-");
    const p = pipeline(dir, topic, ", qos = 'AtLeastOnce'");
    const first = p.start();
    await untilSubscribed(topic, p.out, 1);
    await first.kill();
    const total = await crashRounds(topic, p, 1);
    const job = p.start();
    await waitUntil(`all ${total} messages`, () => new Set(rowsOf(p.out).map((r) => r.id).filter((id) => id < 1_000_000)).size >= total, 30_000);
    expect(await job.stop()).toBe(0);
  });

  test("a shared subscription spreads messages over two subtasks, each read once, with the topic", async () => {
    const topic = uniqueTopic("shared");
    const dir = tempDir("runnel-mqtt-share-");
    const group = `g${Date.now().toString(36)}`;
    const p = pipeline(dir, `$share/${group}/${topic}`, ", qos = 'ExactlyOnce'", {
      parallelism: 2,
      columns: "id BIGINT, k TEXT, t TEXT METADATA FROM 'topic'",
      select: "SELECT id, k, t FROM src",
    });
    const job = p.start();
    await untilSubscribed(topic, p.out, 2);
    // Both subtasks' subscriptions: wait until a probe burst reaches the output through each of them.
    const c = await mqttClient();
    await publishAll(c, topic, messages(0, 400), 2);
    await waitUntil("400 messages", () => rowsOf(p.out).filter((r) => r.id < 1_000_000).length >= 400);
    await Bun.sleep(300);
    expect(await job.stop()).toBe(0);
    const rows = rowsOf(p.out).filter((r) => r.id < 1_000_000);
    expect(rows.map((r) => r.id).sort((a, b) => a - b)).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(new Set(rows.map((r) => r.t))).toEqual(new Set([topic]));
  });

  test("restored with fewer subtasks, the former subtask's session is reopened: what it queued while the job was down is read", async () => {
    const topic = uniqueTopic("rescale");
    const dir = tempDir("runnel-mqtt-rescale-");
    const group = `g${Date.now().toString(36)}`;
    const two = pipeline(dir, `$share/${group}/${topic}`, ", qos = 'ExactlyOnce'", { parallelism: 2 });
    let job = two.start();
    await untilSubscribed(topic, two.out, 2);
    const c = await mqttClient();
    await publishAll(c, topic, messages(0, 200), 2);
    await waitUntil("200 messages", () => rowsOf(two.out).filter((r) => r.id < 1_000_000).length >= 200);
    expect(await job.stop()).toBe(0);
    // Both sessions queue their share while the job is down.
    await publishAll(c, topic, messages(200, 200), 2);
    const one = pipeline(dir, `$share/${group}/${topic}`, ", qos = 'ExactlyOnce'", { parallelism: 1 });
    job = one.start();
    await waitUntil("400 messages", () => rowsOf(one.out).filter((r) => r.id < 1_000_000).length >= 400);
    await Bun.sleep(300);
    expect(await job.stop()).toBe(0);
    const ids = rowsOf(one.out).map((r) => r.id).filter((id) => id < 1_000_000);
    expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: 400 }, (_, i) => i));
  });

  test("QoS 0 reads what is published while it runs", async () => {
    const topic = uniqueTopic("qos0");
    const dir = tempDir("runnel-mqtt-q0-");
    const p = pipeline(dir, topic, "");
    const job = p.start();
    await untilSubscribed(topic, p.out, 0);
    const c = await mqttClient();
    await publishAll(c, topic, messages(0, 100), 0);
    await waitUntil("100 messages", () => rowsOf(p.out).filter((r) => r.id < 1_000_000).length >= 100);
    expect(await job.stop()).toBe(0);
  });

  test("an unreachable broker is refused before the job starts, naming 'url'", async () => {
    const dir = tempDir("runnel-mqtt-refuse-");
    const sql = writeSql(
      dir,
      `CREATE TABLE src (id BIGINT) WITH (connector = 'mqtt', url = 'tcp://127.0.0.1:1', topic = 't', type = 'source', format = 'json');
CREATE TABLE out WITH (connector = 'single_file', path = '${join(dir, "out.jsonl")}', format = 'json', type = 'sink');
INSERT INTO out SELECT id FROM src;`,
    );
    const r = await runCli(["run", sql, "--quiet"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("option 'url'");
  });
});
