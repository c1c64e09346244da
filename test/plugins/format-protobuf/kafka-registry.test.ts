/**
 * The protobuf format against the test broker and schema registry, checked by
 * an independent client (Confluent's Python ProtobufSerializer/Deserializer on
 * Google's protobuf): messages it writes (its registered schema is a base64
 * descriptor importing google/protobuf/timestamp.proto) are read by field
 * name, and messages Runnel writes (registering its .proto text) read back.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { closeKafkaKit, createTopic, KAFKA_OPTS, startJob, waitUntil } from "../../kit/kafka.ts";
import { confluentClient, REGISTRY_OPTS } from "../../kit/schema-registry.ts";

setDefaultTimeout(120_000);
afterAll(closeKafkaKit);

// The same message as test/kit/confluent_client.py builds from its descriptor.
const PROTO = `syntax = "proto3";
package runnel.test;
import "google/protobuf/timestamp.proto";
enum Kind { UNKNOWN = 0; GAUGE = 1; COUNTER = 2; }
message Reading {
  int64 id = 1;
  string sensor = 2;
  double value = 3;
  Kind kind = 4;
  google.protobuf.Timestamp at = 5;
  repeated string tags = 6;
}`;

const T0 = Date.UTC(2024, 4, 1, 12) * 1000; // µs
const rfc3339 = (us: number) => new Date(us / 1000).toISOString().replace(".000Z", "Z");
const lines = (path: string) => readFileSync(path, "utf8").split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));

describe("protobuf with the schema registry", () => {
  test("messages written by Confluent's serializer are read by field name", async () => {
    const topic = await createTopic("pb-in");
    const dir = tempDir("runnel-pb-in-");
    const records = Array.from({ length: 25 }, (_, i) => ({ id: String(1e12 + i), sensor: `s${i % 3}`, value: i / 4, kind: ["UNKNOWN", "GAUGE", "COUNTER"][i % 3], at: rfc3339(T0 + i * 1_000_000), tags: i % 2 ? ["a", "b"] : [] }));
    writeFileSync(join(dir, "in.jsonl"), records.map((r) => JSON.stringify(r)).join("\n"));
    await confluentClient(["produce-protobuf", topic, join(dir, "in.jsonl")]);
    const out = join(dir, "out.jsonl");
    const sql = writeSql(
      dir,
      `CREATE TABLE readings (id BIGINT, sensor TEXT, value DOUBLE, kind TEXT, at TIMESTAMP, tags TEXT[], missing TEXT)
  WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${topic}', type = 'source', format = 'protobuf', 'source.offset' = 'earliest',
        'protobuf.confluent_schema_registry' = 'true', ${REGISTRY_OPTS}, bad_data = 'fail');
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', type = 'sink', format = 'json', timestamp_format = 'unix_millis');
INSERT INTO out SELECT * FROM readings;`,
    );
    const job = startJob([sql, "--checkpoint-interval", "200ms", "--quiet"]);
    try {
      await waitUntil("every message to be written", async () => {
        try {
          return lines(out).length >= records.length;
        } catch {
          return false;
        }
      }, 60_000);
    } finally {
      await job.stop();
    }
    expect(lines(out).sort((a, b) => a.id - b.id)).toEqual(
      records.map((r, i) => ({ id: 1e12 + i, sensor: r.sensor, value: r.value, kind: r.kind, at: (T0 + i * 1_000_000) / 1000, tags: r.tags, missing: null })),
    );
  });

  test("messages written by Runnel register <topic>-value and are read back by Confluent's deserializer", async () => {
    const topic = await createTopic("pb-out");
    const dir = tempDir("runnel-pb-out-");
    const input = join(dir, "in.jsonl");
    const rows = Array.from({ length: 30 }, (_, i) => ({ id: i, sensor: `s${i}`, value: i * 0.5, kind: ["GAUGE", "COUNTER"][i % 2], at: rfc3339(T0 + i * 1_500_000), tags: [`t${i % 4}`] }));
    writeFileSync(input, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const sql = writeSql(
      dir,
      `CREATE TABLE src (id BIGINT, sensor TEXT, value DOUBLE, kind TEXT, at TIMESTAMP, tags TEXT[]) WITH (connector = 'single_file', path = '${input}', type = 'source', format = 'json');
CREATE TABLE sink WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${topic}', type = 'sink', format = 'protobuf', 'protobuf.confluent_schema_registry' = 'true', ${REGISTRY_OPTS},
  'protobuf.message_name' = 'runnel.test.Reading', 'protobuf.schema' = '${PROTO}');
INSERT INTO sink SELECT * FROM src;`,
    );
    const r = await runCli(["run", sql, "--quiet"], { timeoutMs: 60_000 });
    expect({ code: r.code, stderr: r.code === 0 ? "" : r.stderr }).toEqual({ code: 0, stderr: "" });
    const read = (await confluentClient(["consume-protobuf", topic, String(rows.length)])).sort((a, b) => Number(a.id) - Number(b.id));
    // protobuf's JSON mapping: int64 as text, timestamps as RFC 3339.
    expect(read).toEqual(rows.map((x) => ({ ...x, id: String(x.id), at: x.at })));
  });
});
