/**
 * API tokens: with RUNNEL_API_TOKENS set or a token stored, every API needs
 * a bearer token (graphql-ws: in its connection params); stored tokens are
 * SHA-256 hashes and stop working when deleted; unexpected errors are masked.
 * On PGlite and on PostgreSQL.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { apiTokens } from "../../../control-plane/db/schema.ts";
import { BACKENDS, eventually, testControlPlane, type TestControlPlane } from "../../kit/control-plane.ts";

setDefaultTimeout(60_000);

const started: TestControlPlane[] = [];
afterAll(async () => {
  for (const cp of started) await cp.stop();
});

for (const backend of BACKENDS) {
  describe(`authentication on ${backend}`, () => {
    test("with RUNNEL_API_TOKENS set, every API needs a bearer token; created tokens are stored hashed and can be revoked", async () => {
      const cp = await testControlPlane(backend, { apiTokens: ["s3cret-token"] });
      started.push(cp);
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
      const cp = await testControlPlane(backend, { apiTokens: ["ws-token"] });
      started.push(cp);
      const refusal = await cp
        .ws({})
        .iterate({ query: "{ connectors { name } }" })
        .next()
        .then(
          () => null,
          (err) => err,
        );
      expect(refusal?.code).toBe(4403);
      const ok = await cp.ws({ authorization: "Bearer ws-token" }).iterate({ query: "{ connectors { name } }" }).next();
      expect((ok.value as any).data.connectors.length).toBeGreaterThan(0);
    });

    test("an unexpected failure is masked; the server goes on serving", async () => {
      const cp = await testControlPlane(backend);
      started.push(cp);
      await cp.services.db.execute(sql`DROP TABLE udfs`);
      const res = await fetch(`${cp.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: "{ udfs { name } }" }) });
      const body = (await res.json()) as any;
      expect(body.errors[0].message).toBe("Unexpected error.");
      expect(JSON.stringify(body)).not.toContain('udfs" does not exist');
      expect((await cp.gql(`{ connectors { name } }`)).connectors.length).toBeGreaterThan(0);
    });
  });
}
