/**
 * What the web console needs from the API beyond the seed's calls: the stored
 * API tokens (without secrets), the tables and columns of a script (also when a
 * later statement is wrong) and the callable functions for completion, and
 * checkpoints live over a subscription with their size and alignment time.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { eventually, testControlPlane, type TestControlPlane } from "../kit/control-plane.ts";

setDefaultTimeout(60_000);

let cp: TestControlPlane;
beforeAll(async () => {
  cp = await testControlPlane("pglite");
});
afterAll(async () => cp?.stop());

const IMPULSE = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '200');`;

describe("the console's API", () => {
  test("apiTokens lists stored tokens by name, never the token or its hash", async () => {
    // Listing tokens needs the admin role (a token is a viewer unless made otherwise).
    const made = await cp.gql(`mutation { createApiToken(input: { name: "console", role: ADMIN }) { id token } }`);
    const token: string = made.createApiToken.token;
    const listed = await cp.gql(`{ apiTokens { id name createdAt } }`, {}, { authorization: `Bearer ${token}` });
    expect(listed.apiTokens).toEqual([{ id: made.createApiToken.id, name: "console", createdAt: expect.any(Number) }]);
    const raw = JSON.stringify(await cp.gql(`{ __type(name: "ApiToken") { fields { name } } }`, {}, { authorization: `Bearer ${token}` }));
    expect(raw).not.toContain("hash");
    expect(raw).not.toContain("token\"");
    await cp.gql(`mutation { deleteApiToken(input: { id: "${made.createApiToken.id}" }) { __typename } }`, {}, { authorization: `Bearer ${token}` });
  });

  test("validateQuery returns the tables and columns, also when a later statement is wrong", async () => {
    const ok = await cp.gql(`query ($sql: String!) { validateQuery(sql: $sql) { valid tables { name connector columns { name type } } } }`, {
      sql: `${IMPULSE}\nSELECT counter FROM impulse;`,
    });
    expect(ok.validateQuery.valid).toBe(true);
    const impulse = ok.validateQuery.tables.find((t: any) => t.name === "impulse");
    expect(impulse.connector).toBe("impulse");
    expect(impulse.columns).toContainEqual({ name: "counter", type: "BIGINT UNSIGNED" });

    const broken = await cp.gql(`query ($sql: String!) { validateQuery(sql: $sql) { valid diagnostics { line column } tables { name columns { name type } } } }`, {
      sql: `${IMPULSE}\nCREATE TABLE totals (k BIGINT, n BIGINT) WITH (connector = 'blackhole');\nSELECT countr FROM impulse;`,
    });
    expect(broken.validateQuery.valid).toBe(false);
    expect(broken.validateQuery.diagnostics[0].line).toBe(3);
    expect(broken.validateQuery.tables.map((t: any) => t.name).sort()).toEqual(["impulse", "totals"]);
    expect(broken.validateQuery.tables.find((t: any) => t.name === "totals").columns).toEqual([
      { name: "k", type: "BIGINT" },
      { name: "n", type: "BIGINT" },
    ]);
  });

  test("functions lists scalar functions, aggregates and window functions, each one the planner knows", async () => {
    const { functions } = await cp.gql(`{ functions { name kind minArgs } }`);
    const kinds = Object.fromEntries(functions.map((f: any) => [f.name, f.kind]));
    expect(kinds).toMatchObject({ upper: "SCALAR", count: "AGGREGATE", tumble: "WINDOW", coalesce: "SCALAR" });
    // Calling any listed scalar or aggregate never fails as an unknown function (wrong argument types may).
    for (const f of functions.filter((f: any) => f.kind === "SCALAR" || f.kind === "AGGREGATE")) {
      const args = Array.from({ length: f.minArgs ?? 1 }, () => "counter").join(", ");
      const { validateQuery } = await cp.gql(`query ($sql: String!) { validateQuery(sql: $sql) { diagnostics { message } } }`, {
        sql: `${IMPULSE}
SELECT ${f.name}(${args}) AS x FROM impulse;`,
      });
      const message: string = validateQuery.diagnostics[0]?.message ?? "";
      expect(message).not.toMatch(/unknown function|is not supported/);
    }
  });

  test("jobCheckpoints sends the current checkpoints, then each new one with its size and alignment time", async () => {
    const created = await cp.gql(
      `mutation ($input: CreatePipelineInput!) { createPipeline(input: $input) { ... on PipelinePayload { pipeline { id jobs { id } } } ... on UserError { message } } }`,
      { input: { name: "checkpoints", query: `${IMPULSE}\nSELECT counter FROM impulse;`, checkpointIntervalMicros: 300_000 } },
    );
    const jobId: string = created.createPipeline.pipeline.jobs[0].id;
    const seen: any[] = [];
    const it = cp.ws().iterate({ query: `subscription { jobCheckpoints(jobId: "${jobId}") { checkpointId durationMicros alignmentMicros sizeBytes then } }` });
    const reading = (async () => {
      for await (const r of it) {
        if (r.errors) throw new Error(JSON.stringify(r.errors));
        seen.push((r.data as any).jobCheckpoints);
        if (seen.length >= 3) break;
      }
    })();
    await eventually("three checkpoints over the subscription", () => seen.length >= 3);
    await reading;
    const ids = seen.map((c) => c.checkpointId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const c of seen) {
      expect(c.sizeBytes).toBeGreaterThan(0);
      expect(c.alignmentMicros).toBeGreaterThanOrEqual(0);
      expect(c.alignmentMicros).toBeLessThanOrEqual(c.durationMicros);
    }
    // The stored history says the same.
    const stored = await cp.gql(`{ job(id: "${jobId}") { checkpoints { checkpointId sizeBytes } } }`);
    expect(stored.job.checkpoints.length).toBeGreaterThanOrEqual(3);
    expect(stored.job.checkpoints.every((c: any) => c.sizeBytes > 0)).toBe(true);
    await cp.gql(`mutation { stopPipeline(input: { id: "${created.createPipeline.pipeline.id}", mode: immediate }) { __typename } }`);
  });
});
