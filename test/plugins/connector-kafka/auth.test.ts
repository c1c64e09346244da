/**
 * SASL against the test broker's SASL_PLAINTEXT listener: a job reads and
 * writes with SCRAM-SHA-256 and PLAIN credentials given as plain options; a
 * wrong password fails before the job starts, naming the auth options.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { closeKafkaKit, createTopic, KAFKA_SASL, KAFKA_SASL_USER, produce, readAll, startJob, waitUntil } from "../../kit/kafka.ts";

setDefaultTimeout(60_000);
afterAll(closeKafkaKit);

const auth = (mechanism: string, password = KAFKA_SASL_USER.password) =>
  `bootstrap_servers = '${KAFKA_SASL}', 'auth.type' = 'sasl', 'auth.mechanism' = '${mechanism}', 'auth.protocol' = 'SASL_PLAINTEXT', 'auth.username' = '${KAFKA_SASL_USER.username}', 'auth.password' = '${password}'`;

describe("kafka auth", () => {
  for (const mechanism of ["scram-sha-256", "plain"]) {
    test(`sasl ${mechanism}: a job reads and writes (exactly_once) through the SASL listener`, async () => {
      const input = await createTopic("auth-in", 1);
      const output = await createTopic("auth-out", 1);
      await produce(input, Array.from({ length: 20 }, (_, i) => ({ value: JSON.stringify({ id: i }) })));
      const dir = tempDir("runnel-kafka-auth-");
      const sql = `CREATE TABLE src (id BIGINT) WITH (connector = 'kafka', ${auth(mechanism)}, topic = '${input}', type = 'source', format = 'json', 'source.offset' = 'earliest');
CREATE TABLE out (id BIGINT) WITH (connector = 'kafka', ${auth(mechanism)}, topic = '${output}', type = 'sink', format = 'json', 'sink.commit_mode' = 'exactly_once');
INSERT INTO out SELECT id FROM src;`;
      const job = startJob([writeSql(dir, sql), "--checkpoint-interval", "200ms", "--quiet"]);
      await waitUntil("20 records", async () => (await readAll(output, true)).length >= 20, 30_000);
      expect(await job.stop()).toBe(0);
      expect((await readAll(output, true)).map((r) => JSON.parse(r.value).id)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    });
  }

  test("a wrong password fails before the job starts, pointing at the auth options", async () => {
    const topic = await createTopic("auth-bad", 1);
    const dir = tempDir("runnel-kafka-auth-");
    const sql = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100', message_count = '5');
CREATE TABLE out (n BIGINT) WITH (connector = 'kafka', ${auth("scram-sha-256", "wrong")}, topic = '${topic}', type = 'sink', format = 'json');
INSERT INTO out SELECT counter AS n FROM impulse;`;
    const r = await runCli(["run", writeSql(dir, sql), "--quiet"], { timeoutMs: 40_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`table out: cannot reach Kafka at '${KAFKA_SASL}' (option 'bootstrap_servers')`);
    expect(r.stderr).toContain("authentication failed");
    expect(r.stderr).toContain("and the auth.* options");
  });

  test("auth.type = 'sasl' without credentials is a planning error", async () => {
    const dir = tempDir("runnel-kafka-auth-");
    const r = await runCli(["validate", writeSql(dir, `CREATE TABLE s (n BIGINT) WITH (connector = 'kafka', bootstrap_servers = '${KAFKA_SASL}', 'auth.type' = 'sasl', topic = 'x', format = 'json');\nSELECT * FROM s;`)]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("auth.type = 'sasl' needs 'auth.username' and 'auth.password'");
  });
});
