/**
 * Issue 8, probe 7 (tokens have no roles): a token is an admin, an editor or
 * a viewer, and GraphQL (over HTTP, server-sent events and graphql-ws), REST
 * and /metrics hold each to its role. On PGlite and on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { hashToken } from "../../../control-plane/services/tokens.ts";
import { BACKENDS, olderDatabase, testControlPlane, type TestControlPlane } from "../../kit/control-plane.ts";

setDefaultTimeout(60_000);

const ADMIN = "admin-from-env";
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const IMPULSE = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100', message_count = '5');\nSELECT counter FROM impulse;`;
const CREATE_PIPELINE = `mutation ($query: String!) { createPipeline(input: { name: "p", query: $query }) { __typename ... on PipelinePayload { pipeline { id } } } }`;

/** The error code of a refused operation over HTTP, with the HTTP status. */
async function refusal(cp: TestControlPlane, query: string, token: string, variables: Record<string, unknown> = {}) {
  const { status, body } = await cp.gqlReply(query, variables, bearer(token));
  return { status, code: body.errors?.[0]?.extensions?.code as string | undefined, message: body.errors?.[0]?.message as string | undefined };
}

for (const backend of BACKENDS) {
  describe(`roles on ${backend}`, () => {
    let cp: TestControlPlane;
    let viewer: string;
    let editor: string;
    let adminTokenId: string;
    beforeAll(async () => {
      cp = await testControlPlane(backend, { apiTokens: [ADMIN] });
      const made = async (name: string, role?: string) =>
        (await cp.gql(`mutation ($n: String!) { createApiToken(input: { name: $n${role ? `, role: ${role}` : ""} }) { id role token } }`, { n: name }, bearer(ADMIN))).createApiToken;
      const v = await made("dashboard");
      expect(v.role).toBe("VIEWER"); // the default: least privilege
      viewer = v.token;
      editor = (await made("ci", "EDITOR")).token;
      adminTokenId = (await made("second admin", "ADMIN")).id;
    });
    afterAll(async () => cp?.stop());

    test("a viewer reads and subscribes, and can neither create nor delete tokens", async () => {
      expect(await cp.gql("{ viewer { name role } }", {}, bearer(viewer))).toEqual({ viewer: { name: "dashboard", role: "VIEWER" } });
      const created = await refusal(cp, `mutation { createApiToken(input: { name: "mine", role: ADMIN }) { token } }`, viewer);
      expect(created).toMatchObject({ status: 403, code: "FORBIDDEN" });
      expect(created.message).toContain("needs the admin role; this token ('dashboard') is a viewer");
      expect(await refusal(cp, `mutation { deleteApiToken(input: { id: "${adminTokenId}" }) { __typename } }`, viewer)).toMatchObject({ code: "FORBIDDEN" });
      expect(await refusal(cp, CREATE_PIPELINE, viewer, { query: IMPULSE })).toMatchObject({ code: "FORBIDDEN" });
      expect(await refusal(cp, `{ validateQuery(sql: "SELECT 1") { valid } }`, viewer)).toMatchObject({ code: "FORBIDDEN" });
      // An alias does not get around the check.
      expect(await refusal(cp, `mutation { harmless: createApiToken(input: { name: "x" }) { token } }`, viewer)).toMatchObject({ code: "FORBIDDEN" });
      const tokens = await cp.gql("{ apiTokens { name role } }", {}, bearer(ADMIN));
      expect(tokens.apiTokens.map((t: any) => t.name).sort()).toEqual(["ci", "dashboard", "second admin"]);

      // Reading works, and so do subscriptions over both transports; mutations over them are refused alike.
      const pipelineId = (await cp.gql(CREATE_PIPELINE, { query: IMPULSE }, bearer(editor))).createPipeline.pipeline.id;
      expect((await cp.gql(`{ pipeline(id: "${pipelineId}") { id } }`, {}, bearer(viewer))).pipeline.id).toBe(pipelineId);
      const sseUpdate = await cp.sse(bearer(viewer)).iterate({ query: `subscription { jobUpdates(pipelineId: "${pipelineId}") { job { id } } }` }).next();
      expect((sseUpdate.value as any).data.jobUpdates.job.id).toMatch(/^job_/);
      const sseMutation = cp.sse(bearer(viewer)).iterate({ query: `mutation { createApiToken(input: { name: "sse" }) { token } }` }).next();
      await expect(sseMutation).rejects.toThrow("Server responded with 403");
      const ws = cp.ws({ authorization: `Bearer ${viewer}` });
      const wsUpdate = await ws.iterate({ query: `subscription { jobUpdates(pipelineId: "${pipelineId}") { job { id } } }` }).next();
      expect((wsUpdate.value as any).data.jobUpdates.job.id).toMatch(/^job_/);
      const wsMutation = await ws.iterate({ query: `mutation { createApiToken(input: { name: "ws" }) { token } }` }).next();
      expect((wsMutation.value as any).errors[0].extensions.code).toBe("FORBIDDEN");
      expect((await cp.gql("{ apiTokens { name } }", {}, bearer(ADMIN))).apiTokens.length).toBe(3);
    });

    test("an editor manages pipelines and UDFs, not tokens or connection profiles", async () => {
      expect(await cp.gql("{ viewer { name role } }", {}, bearer(editor))).toEqual({ viewer: { name: "ci", role: "EDITOR" } });
      expect((await cp.gql(CREATE_PIPELINE, { query: IMPULSE }, bearer(editor))).createPipeline.__typename).toBe("PipelinePayload");
      expect((await cp.gql(`{ validateQuery(sql: ${JSON.stringify(IMPULSE)}) { valid } }`, {}, bearer(editor))).validateQuery.valid).toBe(true);
      const udf = await cp.gql(
        `mutation { createUdf(input: { name: "twice", definition: "export default { args: ['BIGINT'], returns: 'BIGINT', fn: (x) => x * 2 };" }) { __typename } }`,
        {},
        bearer(editor),
      );
      expect(udf.createUdf.__typename).toBe("UdfPayload");
      expect(await refusal(cp, `mutation { createConnectionProfile(input: { name: "k", connector: "kafka", config: {} }) { __typename } }`, editor)).toMatchObject({ code: "FORBIDDEN" });
      expect(await refusal(cp, `mutation { createApiToken(input: { name: "more" }) { token } }`, editor)).toMatchObject({ code: "FORBIDDEN" });
      expect(await refusal(cp, "{ apiTokens { name } }", editor)).toMatchObject({ code: "FORBIDDEN" });
    });

    test("REST and /metrics: a viewer reads, an editor changes", async () => {
      const post = (token: string) =>
        fetch(`${cp.url}/api/v1/pipelines`, { method: "POST", headers: { "content-type": "application/json", ...bearer(token) }, body: JSON.stringify({ name: "rest", query: IMPULSE }) });
      expect((await fetch(`${cp.url}/api/v1/pipelines`, { headers: bearer(viewer) })).status).toBe(200);
      const denied = await post(viewer);
      expect(denied.status).toBe(403);
      expect(((await denied.json()) as any).error).toContain("POST /api/v1/pipelines needs the editor role");
      expect((await post(editor)).status).toBe(200);
      expect((await fetch(`${cp.url}/metrics`, { headers: bearer(viewer) })).status).toBe(200);
      expect((await fetch(`${cp.url}/metrics`)).status).toBe(401);
    });
  });

  describe(`where roles come from, on ${backend}`, () => {
    const started: TestControlPlane[] = [];
    afterAll(async () => {
      for (const cp of started) await cp.stop();
    });

    test("RUNNEL_API_TOKENS: an entry without a role is an admin; `role:token` has that role", async () => {
      const cp = await testControlPlane(backend, { apiTokens: ["plain-token", "viewer:watch-token", "editor:build-token"] });
      started.push(cp);
      const who = async (token: string) => (await cp.gql("{ viewer { name role } }", {}, bearer(token))).viewer;
      expect(await who("plain-token")).toEqual({ name: null, role: "ADMIN" });
      expect(await who("watch-token")).toEqual({ name: null, role: "VIEWER" });
      expect(await who("build-token")).toEqual({ name: null, role: "EDITOR" });
      expect((await cp.gqlReply("{ viewer { role } }", {}, bearer("viewer:watch-token"))).status).toBe(401);
    });

    test("an open loopback server without tokens: every caller is an admin", async () => {
      const cp = await testControlPlane(backend);
      started.push(cp);
      expect(await cp.gql("{ viewer { name role } }")).toEqual({ viewer: { name: null, role: "ADMIN" } });
    });

    test("tokens stored before roles existed are migrated as admins, not dropped", async () => {
      const older = await olderDatabase(backend, 1, async (sql) => {
        await sql(`INSERT INTO api_tokens (id, name, hash, created_at) VALUES ('tok_legacy', 'from 0.1', $1, 1)`, [hashToken("legacy-token")]);
      });
      const cp = await testControlPlane(backend, {}, older);
      started.push(cp);
      expect((await cp.gqlReply("{ viewer { role } }")).status).toBe(401);
      expect((await cp.gql("{ viewer { name role } }", {}, bearer("legacy-token"))).viewer).toEqual({ name: "from 0.1", role: "ADMIN" });
    });
  });
}
