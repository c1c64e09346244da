/**
 * API tokens (from RUNNEL_API_TOKENS or stored hashed), write-only secrets in
 * connection profiles with {{ ENV }} references resolved where the job runs,
 * UDFs stored as modules, and masked unexpected errors.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { apiTokens } from "../../control-plane/db/schema.ts";
import { tempDir } from "../kit/cli.ts";
import { eventually, testControlPlane, type TestControlPlane } from "../kit/control-plane.ts";

setDefaultTimeout(60_000);

const started: TestControlPlane[] = [];
afterAll(async () => {
  for (const cp of started) await cp.stop();
});
async function start(...args: Parameters<typeof testControlPlane>) {
  const cp = await testControlPlane(...args);
  started.push(cp);
  return cp;
}

describe("API tokens", () => {
  test("with RUNNEL_API_TOKENS set, every API needs a bearer token", async () => {
    const cp = await start("pglite", { apiTokens: ["s3cret-token"] });
    const query = JSON.stringify({ query: "{ connectors { name } }" });
    const post = (headers: Record<string, string>) => fetch(`${cp.url}/graphql`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: query });
    const denied = await post({});
    expect(denied.status).toBe(401);
    expect(JSON.stringify(await denied.json())).toContain("needs an API token");
    expect((await post({ authorization: "Bearer wrong" })).status).toBe(401);
    expect((await post({ authorization: "Bearer s3cret-token" })).status).toBe(200);
    expect((await fetch(`${cp.url}/api/v1/pipelines`)).status).toBe(401);
    expect((await fetch(`${cp.url}/api/v1/pipelines`, { headers: { authorization: "Bearer s3cret-token" } })).status).toBe(200);
    expect((await fetch(`${cp.url}/metrics`)).status).toBe(401);

    // A created token works, is stored only as a hash, and stops working when deleted.
    const made = await cp.gql(`mutation { createApiToken(input: { name: "ci" }) { id token } }`, {}, { authorization: "Bearer s3cret-token" });
    const token: string = made.createApiToken.token;
    expect((await post({ authorization: `Bearer ${token}` })).status).toBe(200);
    const stored = await cp.services.db.select().from(apiTokens);
    expect(stored.length).toBe(1);
    expect(JSON.stringify(stored)).not.toContain(token);
    await cp.gql(`mutation { deleteApiToken(input: { id: "${made.createApiToken.id}" }) { __typename } }`, {}, { authorization: "Bearer s3cret-token" });
    await eventually("the deleted token to be refused", async () => (await post({ authorization: `Bearer ${token}` })).status === 401, 5000);
  });

  test("graphql-ws connections carry the token in connection params", async () => {
    const cp = await start("pglite", { apiTokens: ["ws-token"] });
    const denied = cp.ws({}).iterate({ query: "{ connectors { name } }" });
    const refusal = await denied.next().then(
      () => null,
      (err) => err,
    );
    expect(refusal?.code).toBe(4403);
    const allowed = cp.ws({ authorization: "Bearer ws-token" }).iterate({ query: "{ connectors { name } }" });
    const ok = await allowed.next();
    expect((ok.value as any).data.connectors.length).toBeGreaterThan(0);
  });
});

describe("connection profiles and UDFs", () => {
  test("secrets are write-only; {{ ENV }} is resolved where the job runs; a UDF runs in the job", async () => {
    const cp = await start("pglite");
    const dir = tempDir("runnel-profile-");
    process.env.RUNNEL_TEST_OUT_DIR = dir;
    const profile = await cp.gql(
      `mutation ($input: CreateConnectionProfileInput!) {
        createConnectionProfile(input: $input) {
          __typename
          ... on ConnectionProfilePayload { connectionProfile { id name connector config secretKeys } }
          ... on UserError { message }
        }
      }`,
      { input: { name: "out_files", connector: "single_file", config: { format: "json" }, secrets: { path: "{{ RUNNEL_TEST_OUT_DIR }}/out.jsonl" } } },
    );
    expect(profile.createConnectionProfile.__typename).toBe("ConnectionProfilePayload");
    expect(profile.createConnectionProfile.connectionProfile.secretKeys).toEqual(["path"]);
    const listed = JSON.stringify(await cp.gql(`{ connectionProfiles { name config secretKeys } }`));
    expect(listed).not.toContain("RUNNEL_TEST_OUT_DIR");

    const bad = await cp.gql(
      `mutation { createConnectionProfile(input: { name: "x", connector: "single_file", config: { pth: "/x" } }) { __typename ... on OptionError { option message } } }`,
    );
    expect(bad.createConnectionProfile).toMatchObject({ __typename: "OptionError", option: "pth" });

    const udf = await cp.gql(`mutation ($input: CreateUdfInput!) { createUdf(input: $input) { __typename ... on UdfPayload { udf { name } } ... on UserError { message } } }`, {
      input: { name: "triple", definition: `export default { args: ["BIGINT"], returns: "BIGINT", fn: (x) => x * 3 };` },
    });
    expect(udf.createUdf.__typename).toBe("UdfPayload");
    const brokenUdf = await cp.gql(`mutation { createUdf(input: { name: "broken", definition: "export default 42;" }) { __typename ... on UserError { message } } }`);
    expect(brokenUdf.createUdf.__typename).toBe("OptionError");

    const created = await cp.gql(
      `mutation ($input: CreatePipelineInput!) { createPipeline(input: $input) { __typename ... on PipelinePayload { pipeline { id } } ... on UserError { message } } }`,
      {
        input: {
          name: "profiled",
          udfs: ["triple"],
          query: `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '1000', message_count = '5');
CREATE TABLE out WITH (connection_profile = 'out_files', type = 'sink');
INSERT INTO out SELECT triple(counter) AS tripled FROM impulse;`,
        },
      },
    );
    expect(created.createPipeline.__typename).toBe("PipelinePayload");
    const id = created.createPipeline.pipeline.id;
    await eventually("the job to finish", async () => {
      const r = await cp.gql(`{ pipeline(id: "${id}") { jobs { state failureMessage } } }`);
      const job = r.pipeline.jobs[0];
      if (job.state === "Failed") throw new Error(`job failed: ${job.failureMessage}`);
      return job.state === "Finished";
    });
    const out = join(dir, "out.jsonl");
    expect(existsSync(out)).toBe(true);
    const values = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l).tripled);
    expect(values).toEqual([0, 3, 6, 9, 12]);
  });
});

describe("masked errors", () => {
  test("an unexpected failure is masked; the server goes on serving", async () => {
    const cp = await start("pglite");
    await cp.services.db.execute(sql`DROP TABLE udfs`);
    const res = await fetch(`${cp.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ udfs { name } }" }) });
    const body = await res.json();
    expect(body.errors[0].message).toBe("Unexpected error.");
    expect(JSON.stringify(body)).not.toContain("udfs\" does not exist");
    const still = await cp.gql(`{ connectors { name } }`);
    expect(still.connectors.length).toBeGreaterThan(0);
  });
});
