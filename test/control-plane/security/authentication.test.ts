/**
 * API tokens: with RUNNEL_API_TOKENS set or a token stored, every API needs
 * a bearer token (graphql-ws: in its connection params); stored tokens are
 * SHA-256 hashes and stop working when deleted; unexpected errors are masked.
 * On PGlite and on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { sql } from "drizzle-orm";
import { apiTokens } from "../../../control-plane/db/schema.ts";
import { BACKENDS, eventually, testControlPlane, type TestControlPlane } from "../../kit/control-plane.ts";

setDefaultTimeout(60_000);

const TOKEN = "s3cret-token";
const auth = { authorization: `Bearer ${TOKEN}` };

for (const backend of BACKENDS) {
  describe(`authentication on ${backend}`, () => {
    let cp: TestControlPlane;
    beforeAll(async () => {
      cp = await testControlPlane(backend, { apiTokens: [TOKEN] });
    });
    afterAll(async () => cp?.stop());

    test("with RUNNEL_API_TOKENS set, every API needs a bearer token; created tokens are stored hashed and can be revoked", async () => {
      const query = JSON.stringify({ query: "{ connectors { name } }" });
      const post = (headers: Record<string, string>) => fetch(`${cp.url}/graphql`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: query });
      const denied = await post({});
      expect(denied.status).toBe(401);
      expect(JSON.stringify(await denied.json())).toContain("needs an API token");
      expect((await post({ authorization: "Bearer wrong" })).status).toBe(401);
      expect((await post(auth)).status).toBe(200);
      expect((await fetch(`${cp.url}/api/v1/pipelines`)).status).toBe(401);
      expect((await fetch(`${cp.url}/api/v1/pipelines`, { headers: auth })).status).toBe(200);
      expect((await fetch(`${cp.url}/metrics`)).status).toBe(401);

      const made = await cp.gql(`mutation { createApiToken(input: { name: "ci" }) { id token } }`, {}, auth);
      const token: string = made.createApiToken.token;
      expect((await post({ authorization: `Bearer ${token}` })).status).toBe(200);
      const stored = await cp.services.db.select().from(apiTokens);
      expect(stored.length).toBe(1);
      expect(JSON.stringify(stored)).not.toContain(token);
      await cp.gql(`mutation { deleteApiToken(input: { id: "${made.createApiToken.id}" }) { __typename } }`, {}, auth);
      await eventually("the deleted token to be refused", async () => (await post({ authorization: `Bearer ${token}` })).status === 401, 5000);
    });

    test("graphql-ws connections carry the token in connection params", async () => {
      const refusal = await cp
        .ws({})
        .iterate({ query: "{ connectors { name } }" })
        .next()
        .then(
          () => null,
          (err) => err,
        );
      expect(refusal?.code).toBe(4403);
      const ok = await cp.ws(auth).iterate({ query: "{ connectors { name } }" }).next();
      expect((ok.value as any).data.connectors.length).toBeGreaterThan(0);
    });

    test("an unexpected failure is masked; the server goes on serving", async () => {
      await cp.services.db.execute(sql`DROP TABLE udfs`);
      const { body } = await cp.gqlReply("{ udfs { name } }", {}, auth);
      expect(body.errors[0].message).toBe("Unexpected error.");
      expect(JSON.stringify(body)).not.toContain('udfs" does not exist');
      expect((await cp.gql(`{ connectors { name } }`, {}, auth)).connectors.length).toBeGreaterThan(0);
    });
  });
}
