/**
 * Bad input gets a typed error or a 4xx that says what is wrong, and the
 * server keeps serving; API limits, CSRF prevention and masked errors hold.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { testControlPlane, type TestControlPlane } from "../kit/control-plane.ts";

setDefaultTimeout(60_000);

let cp: TestControlPlane;
beforeAll(async () => {
  cp = await testControlPlane("pglite");
});
afterAll(async () => cp?.stop());

const rest = (path: string, init: RequestInit = {}) =>
  fetch(`${cp.url}/api/v1${path}`, { ...init, headers: { "content-type": "application/json", ...(init.headers ?? {}) } });

const CREATE = `mutation ($input: CreatePipelineInput!) {
  createPipeline(input: $input) {
    __typename
    ... on PipelinePayload { pipeline { id } }
    ... on SqlError { message line column }
    ... on OptionError { message option }
  }
}`;

describe("REST", () => {
  test("malformed JSON names the place; unknown fields are named with the valid ones", async () => {
    let res = await rest("/pipelines", { method: "POST", body: '{"name": "x", "query": ' });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toContain("not valid JSON");
    res = await rest("/pipelines", { method: "POST", body: JSON.stringify({ name: "x", query: "SELECT 1", paralelism: 2 }) });
    expect(res.status).toBe(400);
    const body = await res.json();
    expect(body.error).toContain("unknown field 'paralelism'");
    expect(body.error).toContain("parallelism");
    res = await rest("/pipelines", { method: "POST", body: "[1,2]" });
    expect(res.status).toBe(400);
  });

  test("bad SQL and unknown connectors: 400 with line and column", async () => {
    let res = await rest("/pipelines", {
      method: "POST",
      body: JSON.stringify({ name: "bad", query: "CREATE TABLE t WITH (connector = 'impulse', event_rate = '1');\nSELECT countr FROM t;" }),
    });
    expect(res.status).toBe(400);
    let body = await res.json();
    expect(body).toMatchObject({ kind: "sql", line: 2 });
    expect(body.error).toContain("did you mean `counter`");
    res = await rest("/pipelines", { method: "POST", body: JSON.stringify({ name: "bad", query: "CREATE TABLE t WITH (connector = 'kafak'); SELECT * FROM t;" }) });
    body = await res.json();
    expect(res.status).toBe(400);
    expect(body.error).toContain("unknown connector 'kafak'");
    expect(body.option).toBe("connector");
  });

  test("unknown ids are 404s; an unknown route says so", async () => {
    expect((await rest("/pipelines/pl_nope")).status).toBe(404);
    expect((await rest("/pipelines/pl_nope/jobs")).status).toBe(404);
    expect((await rest("/jobs/job_nope")).status).toBe(404);
    const res = await rest("/nowhere");
    expect(res.status).toBe(404);
    expect((await res.json()).error).toContain("no route GET /api/v1/nowhere");
  });

  test("an invalid stop mode is refused, naming the valid ones", async () => {
    const res = await rest("/pipelines", {
      method: "POST",
      body: JSON.stringify({ name: "ok", query: "CREATE TABLE t WITH (connector = 'impulse', event_rate = '1'); SELECT counter FROM t;" }),
    });
    const { id } = await res.json();
    const patch = await rest(`/pipelines/${id}`, { method: "PATCH", body: JSON.stringify({ stop: "pause" }) });
    expect(patch.status).toBe(400);
    expect((await patch.json()).error).toContain("none, checkpoint, graceful, immediate, force");
    await rest(`/pipelines/${id}`, { method: "PATCH", body: JSON.stringify({ stop: "immediate" }) });
  });
});

describe("GraphQL", () => {
  test("SQL errors and option errors come back as typed results", async () => {
    let r = await cp.gql(CREATE, { input: { name: "x", query: "CREATE TABLE t WITH (connector = 'impulse', event_rate = '1');\n\nSELECT nope FROM t;" } });
    expect(r.createPipeline).toMatchObject({ __typename: "SqlError", line: 3 });
    expect(r.createPipeline.message).toContain("unknown column `nope`");
    r = await cp.gql(CREATE, { input: { name: "x", query: "CREATE TABLE t WITH (connector = 'impulse', event_rat = '1'); SELECT counter FROM t;" } });
    expect(r.createPipeline).toMatchObject({ __typename: "OptionError", option: "event_rat" });
    expect(r.createPipeline.message).toContain("did you mean 'event_rate'");
    r = await cp.gql(CREATE, { input: { name: "x", query: "SELECT 1", parallelism: 0 } });
    expect(r.createPipeline).toMatchObject({ __typename: "OptionError", option: "parallelism" });
  });

  test("validateQuery returns the graph or diagnostics with line and column", async () => {
    const ok = await cp.gql(`{ validateQuery(sql: "CREATE TABLE t WITH (connector = 'impulse', event_rate = '1'); SELECT counter FROM t;") { valid graph tasks nodes { id label } diagnostics { message } } }`);
    expect(ok.validateQuery.valid).toBe(true);
    expect(ok.validateQuery.graph).toContain("source t (impulse)");
    const bad = await cp.gql(`{ validateQuery(sql: "SELECT x FROM missing;") { valid diagnostics { message line column } } }`);
    expect(bad.validateQuery.valid).toBe(false);
    expect(bad.validateQuery.diagnostics[0]).toMatchObject({ line: 1 });
    expect(bad.validateQuery.diagnostics[0].message).toContain("missing");
  });

  test("the connector catalog carries every plugin's options as JSON Schema", async () => {
    const r = await cp.gql(`{ connectors { name source sink optionsSchema } formats { name optionsSchema } }`);
    const impulse = r.connectors.find((c: any) => c.name === "impulse");
    expect(impulse.source).toBe(true);
    expect(impulse.optionsSchema.properties.event_rate).toBeDefined();
    expect(r.formats.map((f: any) => f.name)).toContain("json");
  });

  test("pipelines page with keyset cursors", async () => {
    for (let i = 0; i < 3; i++) {
      await cp.gql(CREATE, { input: { name: `page-${i}`, query: "CREATE TABLE t WITH (connector = 'impulse', event_rate = '1', message_count = '1'); SELECT counter FROM t;" } });
    }
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 20; page++) {
      const r: any = await cp.gql(`query ($after: String) { pipelines(first: 2, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`, { after });
      seen.push(...r.pipelines.edges.map((e: any) => e.node.id));
      if (!r.pipelines.pageInfo.hasNextPage) break;
      after = r.pipelines.pageInfo.endCursor;
    }
    expect(seen.length).toBeGreaterThanOrEqual(4);
    expect(new Set(seen).size).toBe(seen.length);
  });

  test("too deep queries are refused; GET without a CSRF header is refused; unknown fields are reported", async () => {
    const nested = `{ a: pipelines { edges { node { jobs { events { reason } } } } } }`;
    const resOk = await fetch(`${cp.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: nested }) });
    expect(resOk.status).toBe(200);
    let q = "reason";
    for (let i = 0; i < 12; i++) q = `__typename x${i}: pipelines { edges { node { jobs { events { ${q} } } } } }`;
    const res = await fetch(`${cp.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: `{ ${q} }` }) });
    const body = await res.json();
    expect(JSON.stringify(body.errors)).toMatch(/depth|Depth|limit/);
    expect(body.data ?? null).toBeNull();

    const get = await fetch(`${cp.url}/graphql?query=${encodeURIComponent("{ connectors { name } }")}`);
    expect(get.status).toBe(403);
    const withHeader = await fetch(`${cp.url}/graphql?query=${encodeURIComponent("{ connectors { name } }")}`, { headers: { "x-graphql-yoga-csrf": "1" } });
    expect(withHeader.status).toBe(200);

    const unknown = await fetch(`${cp.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ pipelinez { edges { cursor } } }" }) });
    expect(unknown.status).toBe(200);
    expect((await unknown.json()).errors[0].message).toContain("pipelinez");
  });

  test("after all that, the server still serves", async () => {
    const r = await cp.gql(`{ connectors { name } }`);
    expect(r.connectors.length).toBeGreaterThan(3);
  });
});
