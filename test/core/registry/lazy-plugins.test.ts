/**
 * Every process creates the registry, so creating it must not evaluate the
 * libraries plugins run with (AWS SDK, parquetjs, kafkajs, protobufjs...):
 * planning needs only option schemas and checks, and a library loads when a
 * job first creates a source, sink or codec that uses it. Each scenario runs
 * in a fresh process, whose module cache shows what was loaded.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { REPO, tempDir } from "../../kit/cli.ts";
import { closeKafkaKit, createTopic, KAFKA_OPTS, readAll } from "../../kit/kafka.ts";

setDefaultTimeout(120_000);

/** Packages only sources, sinks, formats, storages and schedulers run with. */
const HEAVY = [
  "@aws-sdk/client-s3",
  "@aws-sdk/client-kinesis",
  "@smithy/node-http-handler",
  "@dsnp/parquetjs",
  "kafkajs",
  "mqtt",
  "ioredis",
  "protobufjs",
  "avsc",
  "@nats-io/transport-node",
  "@nats-io/jetstream",
  "amqplib",
  "postgres",
  "csv-parse",
  "eventsource-parser",
  "@kubernetes/client-node",
];

/**
 * Runs `body` in a fresh Bun process after importing the engine; `loaded()` in
 * it lists the HEAVY packages evaluated so far. Prints what `body` returns.
 */
async function inFreshProcess(body: string): Promise<any> {
  const script = `
    import { createRegistry } from ${JSON.stringify(join(REPO, "core/registry/loader.ts"))};
    import { planSql } from ${JSON.stringify(join(REPO, "core/sql/index.ts"))};
    import { Job } from ${JSON.stringify(join(REPO, "core/dataflow/job.ts"))};
    const HEAVY = ${JSON.stringify(HEAVY)};
    const loaded = () => HEAVY.filter((p) => Object.keys(require.cache).some((k) => k.includes("/node_modules/" + p + "/")));
    const result = await (async () => { ${body} })();
    console.log(JSON.stringify(result));
  `;
  const proc = Bun.spawn(["bun", "-e", script], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`child process failed (${code}):\n${err}`);
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

afterAll(closeKafkaKit);

describe("plugins load their libraries when used", () => {
  test("creating the registry loads every plugin but none of their libraries", async () => {
    const r = await inFreshProcess(`
      const registry = await createRegistry(${JSON.stringify(REPO)});
      return { failures: registry.failures, connectors: [...registry.connectors.keys()], formats: [...registry.formats.keys()], loaded: loaded() };
    `);
    expect(r.failures).toEqual([]);
    expect(r.connectors).toEqual(expect.arrayContaining(["kafka", "kinesis", "filesystem", "delta", "iceberg", "mqtt", "nats", "rabbitmq", "redis", "postgres"]));
    expect(r.formats).toEqual(expect.arrayContaining(["parquet", "avro", "protobuf", "csv"]));
    expect(r.loaded).toEqual([]);
  });

  test("a Kafka JSON pipeline is planned without kafkajs, which loads when the job runs", async () => {
    const topic = await createTopic("lazy-plugins");
    const sql = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '0', message_count = '20');
      CREATE TABLE out (n BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${topic}', type = 'sink', format = 'json');
      INSERT INTO out SELECT CAST(counter AS BIGINT) AS n FROM impulse;`;
    const r = await inFreshProcess(`
      const registry = await createRegistry(${JSON.stringify(REPO)});
      const pipeline = planSql(${JSON.stringify(sql)}, registry);
      const planned = loaded();
      const job = new Job(pipeline, registry, { parallelism: 1, stateDir: ${JSON.stringify(tempDir("runnel-lazy-"))}, checkpointIntervalMs: 0, log: { info() {}, warn() {} } });
      await job.run();
      return { planned, ran: loaded() };
    `);
    expect(r.planned).toEqual([]);
    expect(r.ran).toEqual(["kafkajs"]);
    const records = await readAll(topic, false);
    expect(records.map((x) => JSON.parse(x.value).n).sort((a: number, b: number) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});
