/**
 * SASL and TLS against the test broker's SASL_PLAINTEXT, SSL and SASL_SSL
 * listeners: jobs read and write with credentials and a CA given as plain
 * options; a wrong password or an unverifiable certificate fails before the
 * job starts, naming the options to look at.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Job } from "../../../core/dataflow/job.ts";
import { createRegistry } from "../../../core/registry/loader.ts";
import { planSql } from "../../../core/sql/index.ts";
import { REPO, runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { closeKafkaKit, createTopic, KAFKA_CA_FILE, KAFKA_SASL, KAFKA_SASL_SSL, KAFKA_SASL_USER, KAFKA_SSL, produce, readAll, startJob, waitUntil } from "../../kit/kafka.ts";

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

  const roundTrip = async (options: string) => {
    const input = await createTopic("tls-in", 1);
    const output = await createTopic("tls-out", 1);
    await produce(input, Array.from({ length: 10 }, (_, i) => ({ value: JSON.stringify({ id: i }) })));
    const dir = tempDir("runnel-kafka-tls-");
    const sql = `CREATE TABLE src (id BIGINT) WITH (connector = 'kafka', ${options}, topic = '${input}', type = 'source', format = 'json', 'source.offset' = 'earliest');
CREATE TABLE out (id BIGINT) WITH (connector = 'kafka', ${options}, topic = '${output}', type = 'sink', format = 'json', 'sink.commit_mode' = 'exactly_once');
INSERT INTO out SELECT id FROM src;`;
    const job = startJob([writeSql(dir, sql), "--checkpoint-interval", "200ms", "--quiet"]);
    await waitUntil("10 records", async () => (await readAll(output, true)).length >= 10, 30_000);
    expect(await job.stop()).toBe(0);
    expect((await readAll(output, true)).map((r) => JSON.parse(r.value).id)).toEqual(Array.from({ length: 10 }, (_, i) => i));
  };

  test("tls.enabled with tls.ca_file: a job reads and writes over TLS", async () => {
    await roundTrip(`bootstrap_servers = '${KAFKA_SSL}', 'tls.enabled' = 'true', 'tls.ca_file' = '${KAFKA_CA_FILE}'`);
  });

  test("sasl over TLS (auth.protocol SASL_SSL, the default) with scram-sha-512", async () => {
    await roundTrip(
      `bootstrap_servers = '${KAFKA_SASL_SSL}', 'auth.type' = 'sasl', 'auth.mechanism' = 'scram-sha-512', 'auth.username' = '${KAFKA_SASL_USER.username}', 'auth.password' = '${KAFKA_SASL_USER.password}', 'tls.ca_file' = '${KAFKA_CA_FILE}'`,
    );
  });

  test("a broker certificate that does not verify fails before the job starts", async () => {
    const dir = tempDir("runnel-kafka-tls-");
    const sql = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100', message_count = '5');
CREATE TABLE out (n BIGINT) WITH (connector = 'kafka', bootstrap_servers = '${KAFKA_SSL}', 'tls.enabled' = 'true', topic = 'x', type = 'sink', format = 'json', connection_timeout = '2s');
INSERT INTO out SELECT counter AS n FROM impulse;`;
    const r = await runCli(["run", writeSql(dir, sql), "--quiet"], { timeoutMs: 40_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`table out: cannot reach Kafka at '${KAFKA_SSL}' (option 'bootstrap_servers')`);
    expect(r.stderr).toContain("certificate");
    expect(r.stderr).toContain("tls.ca_file");
  });

  test("a connection profile supplies the brokers and credentials; the table names only its topic", async () => {
    const topic = await createTopic("profile-out", 1);
    const registry = await createRegistry(REPO);
    const profiles: Record<string, { connector: string; options: Record<string, string> }> = {
      "sasl-cluster": {
        connector: "kafka",
        options: { bootstrap_servers: KAFKA_SASL, "auth.type": "sasl", "auth.mechanism": "scram-sha-256", "auth.protocol": "SASL_PLAINTEXT", "auth.username": KAFKA_SASL_USER.username, "auth.password": KAFKA_SASL_USER.password },
      },
    };
    const pipeline = planSql(
      `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '1000', message_count = '25');
CREATE TABLE out (n BIGINT) WITH (connection_profile = 'sasl-cluster', topic = '${topic}', type = 'sink', format = 'json', 'sink.commit_mode' = 'exactly_once');
INSERT INTO out SELECT counter AS n FROM impulse;`,
      registry,
      { connectionProfile: (name) => profiles[name] },
    );
    const job = new Job(pipeline, registry, { parallelism: 1, stateDir: tempDir("runnel-kafka-profile-"), checkpointIntervalMs: 200, log: { info() {}, warn() {} } });
    expect(await job.run()).toBe("end");
    expect((await readAll(topic, true)).map((r) => JSON.parse(r.value).n)).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

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
