/**
 * The message-system and HTTP connectors as the catalog and connection
 * profiles see them: JSON Schema from their option declarations, secrets
 * write-only, and a connection profile supplying the connection options of a
 * table (run against the test Redis).
 */
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { Job } from "../../core/dataflow/job.ts";
import { optionsJsonSchema } from "../../core/plugin-api/options.ts";
import { createRegistry } from "../../core/registry/loader.ts";
import { planSql } from "../../core/sql/index.ts";
import { tempDir } from "../kit/cli.ts";
import { closeRedisKit, REDIS_URL, redisClient, uniquePrefix } from "../kit/redis.ts";

setDefaultTimeout(30_000);
afterAll(closeRedisKit);

const SECRETS: Record<string, string[]> = {
  mqtt: ["password", "tls.key"],
  nats: ["auth.password", "auth.jwt", "auth.nkey_seed", "auth.token"],
  rabbitmq: ["password"],
  redis: ["password"],
  sse: ["headers"],
  websocket: ["headers"],
  polling_http: ["headers"],
  webhook: ["headers"],
};

test("each connector's options yield JSON Schema with its secrets write-only and its required options", async () => {
  const registry = await createRegistry();
  for (const [name, secrets] of Object.entries(SECRETS)) {
    const connector = registry.connector(name);
    expect(connector, name).toBeDefined();
    const schema = optionsJsonSchema(connector!.options) as { properties: Record<string, { writeOnly?: boolean }>; required: string[] };
    const writeOnly = Object.entries(schema.properties).filter(([, p]) => p.writeOnly).map(([k]) => k).sort();
    expect(writeOnly, name).toEqual([...secrets].sort());
  }
  const required = (name: string) => (optionsJsonSchema(registry.connector(name)!.options) as { required: string[] }).required;
  expect(required("mqtt")).toEqual(["url", "topic"]);
  expect(required("nats")).toEqual(["servers"]);
  expect(required("redis")).toEqual(["address"]);
  expect(required("webhook")).toEqual(["endpoint"]);
});

test("a connection profile supplies a table's connection options", async () => {
  const registry = await createRegistry();
  const prefix = uniquePrefix("profile");
  const profiles = { cache: { connector: "redis", options: { address: REDIS_URL } } };
  const pipeline = planSql(
    `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '0', message_count = '10');
CREATE TABLE out (id BIGINT) WITH (connection_profile = 'cache', target = 'list', 'target.key_prefix' = '${prefix}l', type = 'sink', format = 'json');
INSERT INTO out SELECT CAST(counter AS BIGINT) AS id FROM imp;`,
    registry,
    { connectionProfile: (name) => profiles[name as "cache"] },
  );
  const job = new Job(pipeline, registry, { parallelism: 1, stateDir: tempDir("runnel-profile-"), checkpointIntervalMs: 0, log: { info() {}, warn() {} } });
  expect(await job.run()).toBe("end");
  expect((await redisClient().lrange(`${prefix}l`, 0, -1)).map((v) => JSON.parse(v).id)).toEqual(Array.from({ length: 10 }, (_, i) => i));
});
