/**
 * The avro format against the test broker and schema registry, checked by an
 * independent client (Confluent's Python AvroSerializer/AvroDeserializer on
 * fastavro): records it writes under two registered versions of a subject are
 * read by field name; rows Runnel writes register `<topic>-value` and read back
 * through it; wrong registry credentials fail the job naming the options.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { closeKafkaKit, createTopic, KAFKA_OPTS, startJob, waitUntil } from "../../kit/kafka.ts";
import { confluentClient, REGISTRY_OPTS, SCHEMA_REGISTRY, SCHEMA_REGISTRY_USER } from "../../kit/schema-registry.ts";

setDefaultTimeout(120_000);
afterAll(closeKafkaKit);

const T0 = Date.UTC(2024, 4, 1, 12); // ms

const V1 = {
  type: "record",
  name: "Payment",
  namespace: "shop",
  fields: [
    { name: "id", type: "long" },
    { name: "customer", type: "string" },
    { name: "amount", type: { type: "bytes", logicalType: "decimal", precision: 10, scale: 2 } },
    { name: "paid_at", type: { type: "long", logicalType: "timestamp-millis" } },
  ],
};
// Version 2 adds a nullable field and reorders: read by name, both versions land in the same columns.
const V2 = {
  ...V1,
  fields: [V1.fields[3], V1.fields[0], { name: "region", type: ["null", "string"], default: null }, V1.fields[1], V1.fields[2]],
};

const lines = (path: string) => readFileSync(path, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));

describe("avro with the schema registry", () => {
  test("records of two registered versions, written by Confluent's serializer, are read by field name", async () => {
    const topic = await createTopic("avro-in");
    const dir = tempDir("runnel-avro-in-");
    // fastavro takes decimals as Decimal objects; the Python side builds them from text.
    const v1 = Array.from({ length: 30 }, (_, i) => ({ id: i, customer: `c${i % 4}`, amount: `${i}.${String(i % 100).padStart(2, "0")}`, paid_at: T0 + i * 1000 }));
    const v2 = Array.from({ length: 20 }, (_, j) => ({ id: 30 + j, customer: `c${j % 3}`, amount: `-${j}.05`, paid_at: T0 + (30 + j) * 1000, region: j % 2 ? "eu" : null }));
    for (const [name, schema, records] of [["v1", V1, v1], ["v2", V2, v2]] as const) {
      writeFileSync(join(dir, `${name}.avsc`), JSON.stringify(schema));
      writeFileSync(join(dir, `${name}.jsonl`), records.map((r) => JSON.stringify(r)).join("\n"));
      await confluentClient(["produce-avro", topic, join(dir, `${name}.avsc`), join(dir, `${name}.jsonl`), "decimal:amount"]);
    }
    const versions = await fetch(`${SCHEMA_REGISTRY}/subjects/${topic}-value/versions`, {
      headers: { authorization: `Basic ${btoa(`${SCHEMA_REGISTRY_USER.user}:${SCHEMA_REGISTRY_USER.password}`)}` },
    }).then((r) => r.json());
    expect(versions).toEqual([1, 2]);

    const out = join(dir, "out.jsonl");
    const sql = writeSql(
      dir,
      `CREATE TABLE payments (id BIGINT NOT NULL, customer TEXT, amount DECIMAL(10, 2), paid_at TIMESTAMP, region TEXT)
  WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${topic}', type = 'source', format = 'avro', 'source.offset' = 'earliest',
        'avro.confluent_schema_registry' = 'true', ${REGISTRY_OPTS}, bad_data = 'fail');
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', type = 'sink', format = 'json', timestamp_format = 'unix_millis');
INSERT INTO out SELECT id, customer, amount, paid_at, region FROM payments;`,
    );
    const job = startJob([sql, "--checkpoint-interval", "200ms", "--quiet"]);
    try {
      await waitUntil("every record to be written", async () => {
        try {
          return lines(out).length >= 50;
        } catch {
          return false;
        }
      }, 60_000);
    } finally {
      await job.stop();
    }
    const got = lines(out).sort((a, b) => a.id - b.id);
    const expected = [...v1.map((r) => ({ ...r, region: null })), ...v2].map((r) => ({
      id: r.id,
      customer: r.customer,
      amount: Number(r.amount),
      paid_at: r.paid_at,
      region: r.region,
    }));
    expect(got).toEqual(expected);
  });

  test("rows written by Runnel register <topic>-value and are read back by Confluent's deserializer", async () => {
    const topic = await createTopic("avro-out");
    const dir = tempDir("runnel-avro-out-");
    const input = join(dir, "in.jsonl");
    const rows = Array.from({ length: 40 }, (_, i) => ({ id: i, name: i % 5 === 0 ? null : `n${i}`, score: i * 1.5, at: `2024-05-01T12:00:${String(i % 60).padStart(2, "0")}.123456Z`, tags: [`t${i % 3}`], price: i + 0.25 }));
    writeFileSync(input, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const sql = writeSql(
      dir,
      `CREATE TABLE src (id BIGINT NOT NULL, name TEXT, score DOUBLE, at TIMESTAMP, tags TEXT[], price DECIMAL(12, 2)) WITH (connector = 'single_file', path = '${input}', type = 'source', format = 'json');
CREATE TABLE sink WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${topic}', type = 'sink', format = 'avro', 'avro.confluent_schema_registry' = 'true', ${REGISTRY_OPTS});
INSERT INTO sink SELECT * FROM src;`,
    );
    const r = await runCli(["run", sql, "--quiet"], { timeoutMs: 60_000 });
    expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, stderr: "" });
    const read = (await confluentClient(["consume-avro", topic, String(rows.length)])).sort((a, b) => a.id - b.id);
    expect(read).toEqual(
      rows.map((x) => ({
        id: x.id,
        name: x.name,
        score: x.score,
        at: Date.parse(x.at.slice(0, 19) + "Z") * 1000 + 123456,
        tags: x.tags,
        price: x.price.toFixed(2), // the Python side prints Decimals as text
      })),
    );
  });

  test("a registry refusing the credentials fails the job, naming the options", async () => {
    const topic = await createTopic("avro-auth");
    const dir = tempDir("runnel-avro-auth-");
    const sql = writeSql(
      dir,
      `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100', message_count = '5');
CREATE TABLE sink WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${topic}', type = 'sink', format = 'avro', 'avro.confluent_schema_registry' = 'true',
  'schema_registry.endpoint' = '${SCHEMA_REGISTRY}', 'schema_registry.api_key' = 'runnel', 'schema_registry.api_secret' = 'wrong');
INSERT INTO sink SELECT counter FROM impulse;`,
    );
    const r = await runCli(["run", sql, "--quiet"], { timeoutMs: 60_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("check options 'schema_registry.api_key' and 'schema_registry.api_secret'");
  });
});
