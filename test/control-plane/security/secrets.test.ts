/**
 * Issue 8, probe 6 (secrets): connection profiles' secrets are sealed at rest
 * with AES-GCM (and rows from before sealing are sealed at the next start),
 * `runnel secrets rotate-key` re-seals them with a new key, and secret option
 * values — options declared secret, passwords inside connection strings — are
 * masked wherever a pipeline's query is returned (GraphQL, REST) and blotted
 * out of failures and job events. On PGlite and on PostgreSQL.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connectionProfiles } from "../../../control-plane/db/schema.ts";
import { runCli } from "../../kit/cli.ts";
import { BACKENDS, eventually, olderDatabase, testControlPlane, stoppedAfterAll, type TestControlPlane } from "../../kit/control-plane.ts";

setDefaultTimeout(60_000);

const started = stoppedAfterAll<TestControlPlane>();

const PASSWORD = "hunter2-in-the-url";
const KAFKA_PASSWORD = "kafka-sasl-secret";
const ENDPOINT_PASSWORD = "pw-in-an-endpoint";
/** Uses a profile for the impulse's count, so a job proves the sealed secret still opens. */
const PROFILED = `CREATE TABLE impulse WITH (connection_profile = 'ticks');\nSELECT counter FROM impulse;`;

async function runToEnd(cp: TestControlPlane, query: string) {
  const r = await cp.gql(`mutation ($q: String!) { createPipeline(input: { name: "s", query: $q }) { __typename ... on PipelinePayload { pipeline { id jobs { id } } } ... on UserError { message } } }`, { q: query });
  if (r.createPipeline.__typename !== "PipelinePayload") throw new Error(r.createPipeline.message);
  const jobId = r.createPipeline.pipeline.jobs[0].id;
  return eventually("the job to end", async () => {
    const job = (await cp.gql(`{ job(id: "${jobId}") { id state failureMessage events { reason } } }`)).job;
    return job.state === "Finished" || job.state === "Failed" ? { ...job, pipelineId: r.createPipeline.pipeline.id } : undefined;
  });
}

const rawSecrets = async (cp: TestControlPlane) => JSON.stringify((await cp.services.db.select().from(connectionProfiles)).map((r) => r.secrets));

const runnel = (args: string[], env: Record<string, string>) => runCli(args, { env });

for (const backend of BACKENDS) {
  describe(`secrets on ${backend}`, () => {
    test("profile secrets are sealed at rest; the API gives back their names only", async () => {
      const cp = await testControlPlane(backend);
      started.push(cp);
      const made = await cp.gql(
        `mutation ($i: CreateConnectionProfileInput!) { createConnectionProfile(input: $i) { ... on ConnectionProfilePayload { connectionProfile { config secretKeys } } } }`,
        // A password given among the plain settings is kept as a secret all the same.
        { i: { name: "broker", connector: "kafka", config: { bootstrap_servers: "localhost:9092", "auth.password": KAFKA_PASSWORD }, secrets: { "auth.username": "user-x1" } } },
      );
      expect(made.createConnectionProfile.connectionProfile).toEqual({ config: { bootstrap_servers: "localhost:9092" }, secretKeys: ["auth.password", "auth.username"] });
      const raw = await rawSecrets(cp);
      expect(raw).not.toContain(KAFKA_PASSWORD);
      expect(raw).not.toContain("user-x1");
      expect(raw).toMatch(/"sealed":"v1:[0-9a-f]{12}:/);
    });

    test("secrets stored in plain text before sealing existed are sealed at the next start, and still work", async () => {
      const older = await olderDatabase(backend, 1, async (sql) => {
        await sql(`INSERT INTO connection_profiles (id, name, connector, config, secrets, created_at) VALUES ('cp_old', 'ticks', 'impulse', '{"event_rate":"100"}', '{"message_count":"4"}', 1)`);
      });
      const cp = await testControlPlane(backend, {}, older);
      started.push(cp);
      expect(cp.logs.join("\n")).toContain("sealed the secrets of 1 connection profile");
      const raw = await rawSecrets(cp);
      expect(raw).toMatch(/"sealed":"v1:/);
      expect(raw).not.toContain("message_count\":\"4");
      expect((await runToEnd(cp, PROFILED)).state).toBe("Finished");
    });

    test("passwords in connection strings and secret options are masked in every query returned, and blotted out of failures", async () => {
      const cp = await testControlPlane(backend);
      started.push(cp);
      const query = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100', message_count = '3');
CREATE TABLE totals (counter BIGINT) WITH (connector = 'postgres', connection_string = 'postgres://runnel:${PASSWORD}@127.0.0.1:1/db', table_name = 'x{{ RUNNEL_SECRET_NOT_SET }}');
CREATE TABLE k (counter BIGINT) WITH (connector = 'kafka', bootstrap_servers = 'localhost:1', topic = 't', format = 'json', type = 'sink', 'auth.type' = 'sasl', 'auth.username' = 'u', 'auth.password' = '${KAFKA_PASSWORD}');
CREATE TABLE files WITH (connector = 'filesystem', path = 's3://bucket/prefix', format = 'json', 'storage.aws_endpoint' = 'http://minio:${ENDPOINT_PASSWORD}@127.0.0.1:1');
INSERT INTO totals SELECT counter FROM impulse;
INSERT INTO k SELECT counter FROM impulse;
INSERT INTO files SELECT counter FROM impulse;`;
      // A mistake on the password's line: the error shows the line, masked.
      const wrong = await cp.gql(`mutation ($q: String!) { createPipeline(input: { name: "x", query: $q }) { ... on UserError { message } } }`, { q: query.replace("table_name", "tabel_name") });
      expect(wrong.createPipeline.message).toContain("unknown option 'tabel_name'");
      expect(wrong.createPipeline.message).toContain("connection_string = '***'");
      expect(wrong.createPipeline.message).not.toContain(PASSWORD);

      // The job fails where it runs ({{ RUNNEL_SECRET_NOT_SET }}), showing the line of the password.
      const job = await runToEnd(cp, query);
      expect(job.state).toBe("Failed");
      expect(job.failureMessage).toContain("RUNNEL_SECRET_NOT_SET, which is not set");
      const shown = [
        JSON.stringify(job),
        await (await fetch(`${cp.url}/api/v1/pipelines`)).text(),
        await (await fetch(`${cp.url}/api/v1/pipelines/${job.pipelineId}`)).text(),
        await (await fetch(`${cp.url}/api/v1/jobs/${job.id}/events`)).text(),
        JSON.stringify(await cp.gql(`{ pipeline(id: "${job.pipelineId}") { query versions { query } } pipelines { edges { node { query } } } }`)),
      ].join("\n");
      expect(shown).not.toContain(PASSWORD);
      expect(shown).not.toContain(KAFKA_PASSWORD);
      expect(shown).not.toContain(ENDPOINT_PASSWORD);
      // Options declared secret lose their whole value; elsewhere a URL loses its password.
      expect(shown).toContain("connection_string = '***'");
      expect(shown).toContain("'storage.aws_endpoint' = 'http://minio:***@127.0.0.1:1'");
      expect(shown).toContain("'auth.password' = '***'");
    });

    test("`runnel secrets rotate-key` re-seals every profile with a new key; the control plane opens them after", async () => {
      let cp = await testControlPlane(backend);
      await cp.gql(`mutation { createConnectionProfile(input: { name: "ticks", connector: "impulse", config: { event_rate: "100" }, secrets: { message_count: "2" } }) { __typename } }`);
      const before = await rawSecrets(cp);
      const oldKey = readFileSync(join(cp.dataDir, "secret.key"), "utf8");
      await cp.stop();
      const env = { RUNNEL_DATA_DIR: cp.dataDir, DATABASE_URL: cp.databaseUrl ?? "" };
      const rotated = await runnel(["secrets", "rotate-key"], env);
      expect(rotated.code).toBe(0);
      expect(rotated.stderr).toContain("re-sealed the secrets of 1 connection profile");
      expect(readFileSync(join(cp.dataDir, "secret.key"), "utf8")).not.toBe(oldKey);
      expect(readFileSync(join(cp.dataDir, "secret.key.previous"), "utf8")).toBe(oldKey);
      cp = await testControlPlane(backend, {}, { dataDir: cp.dataDir, databaseUrl: cp.databaseUrl });
      started.push(cp);
      const after = await rawSecrets(cp);
      const keyId = (raw: string) => /"sealed":"v1:([0-9a-f]+):/.exec(raw)![1];
      expect(keyId(after)).not.toBe(keyId(before));
      expect((await runToEnd(cp, PROFILED)).state).toBe("Finished");

      // With the key in RUNNEL_SECRET_KEY, the new key is printed for the operator to set.
      const envKey = randomBytes(32).toString("base64");
      await cp.stop();
      const fromEnv = { ...env, RUNNEL_SECRET_KEY: envKey };
      cp = await testControlPlane(backend, { secretKey: envKey }, { dataDir: cp.dataDir, databaseUrl: cp.databaseUrl });
      expect(cp.logs.join("\n")).toContain("sealed the secrets of 1 connection profile");
      await cp.stop();
      const printed = await runnel(["secrets", "rotate-key"], fromEnv);
      expect(printed.code).toBe(0);
      expect(printed.stdout.trim()).toMatch(/^[A-Za-z0-9+/]{43}=$/);
      cp = await testControlPlane(backend, { secretKey: printed.stdout.trim() }, { dataDir: cp.dataDir, databaseUrl: cp.databaseUrl });
      started.push(cp);
      expect((await runToEnd(cp, PROFILED)).state).toBe("Finished");
      expect(existsSync(join(cp.dataDir, "secret.key.next"))).toBe(false);
    });
  });
}
