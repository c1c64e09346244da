/**
 * The broker restarts while an exactly-once Kafka → Kafka job runs: the job
 * rides it out by itself (sources retry their fetches, producers retry their
 * sends idempotently, commits retry) and the output is still exactly once.
 * Restarts the test broker through scripts/services/kafka.sh, so it runs by
 * itself after the other test files (@runs-alone, see scripts/test.sh).
 */
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { Partitioners } from "kafkajs";
import { REPO, tempDir, writeSql } from "../../kit/cli.ts";
import { closeKafkaKit, createTopic, KAFKA_OPTS, readAll, startJob, testKafka, waitUntil } from "../../kit/kafka.ts";

setDefaultTimeout(240_000);
afterAll(closeKafkaKit);

async function kafkaService(verb: "start" | "stop"): Promise<void> {
  const proc = Bun.spawn([join(REPO, "scripts", "services", "kafka.sh"), verb], { stdout: "pipe", stderr: "pipe" });
  const code = await proc.exited;
  if (code !== 0) throw new Error(`kafka.sh ${verb} failed: ${await new Response(proc.stderr).text()}`);
}

test("the broker restarts under a running exactly_once job: it recovers by itself, output exactly once", async () => {
  const input = await createTopic("restart-in", 2);
  const output = await createTopic("restart-out", 2);
  const dir = tempDir("runnel-kafka-restart-");
  const sql = writeSql(
    dir,
    `CREATE TABLE src (id BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${input}', type = 'source', format = 'json', 'source.offset' = 'earliest');
CREATE TABLE out (id BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${output}', type = 'sink', format = 'json', 'sink.commit_mode' = 'exactly_once');
INSERT INTO out SELECT id FROM src;`,
  );
  const job = startJob([sql, "--state-dir", join(dir, "state"), "--checkpoint-interval", "500ms", "--quiet"]);
  let next = 0;
  const send = async (n: number) => {
    const producer = testKafka("restart-input").producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1, retry: { retries: 20, maxRetryTime: 3000 } });
    await producer.connect();
    await producer.send({ topic: input, acks: -1, messages: Array.from({ length: n }, () => ({ value: JSON.stringify({ id: next++ }) })) });
    await producer.disconnect();
  };
  await send(500);
  await waitUntil("output before the restart", async () => (await readAll(output, true)).length >= 500, 30_000);
  await closeKafkaKit();

  await kafkaService("stop");
  await Bun.sleep(1500);
  expect(job.proc.exitCode).toBeNull();
  await kafkaService("start");

  await send(500);
  await waitUntil("output after the restart", async () => (await readAll(output, true)).length >= 1000, 120_000, 500);
  expect(job.proc.exitCode).toBeNull(); // never exited: it recovered in place
  await Bun.sleep(1000);
  expect(await job.stop()).toBe(0);
  const ids = (await readAll(output, true)).map((r) => JSON.parse(r.value).id).sort((a, b) => a - b);
  expect(ids).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  expect(job.stderr()).toContain("retrying");
});
