/**
 * Issue 8, probe 4 (no request size limits): bodies over the limit (1 MB by
 * default) are refused with 413 and a message before they are read, however
 * they are sent; SQL over its own limit is refused naming the setting; a
 * graphql-ws message over the limit closes the socket. On PGlite and on
 * PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { BACKENDS, testControlPlane, type TestControlPlane } from "../../kit/control-plane.ts";

setDefaultTimeout(60_000);

const MB = 1024 * 1024;

/** A GraphQL body of about `bytes` carrying that much SQL. */
const bigValidation = (bytes: number) => JSON.stringify({ query: "query ($sql: String!) { validateQuery(sql: $sql) { valid } }", variables: { sql: `SELECT 1 ${"+ 1 ".repeat(bytes / 4)}` } });

for (const backend of BACKENDS) {
  describe(`request limits on ${backend}`, () => {
    let cp: TestControlPlane;
    beforeAll(async () => {
      cp = await testControlPlane(backend, { maxSqlBytes: 64 * 1024 });
    });
    afterAll(async () => cp?.stop());

    for (const size of [10, 100]) {
      test(`a ${size} MB body is refused with 413 and says why`, async () => {
        for (const path of ["/graphql", "/api/v1/pipelines"]) {
          const res = await fetch(`${cp.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: bigValidation(size * MB) });
          expect(res.status).toBe(413);
          expect(((await res.json()) as any).error).toContain(`is larger than this control plane accepts (${MB} bytes, RUNNEL_MAX_BODY_BYTES)`);
        }
        // It goes on serving.
        expect((await cp.gql("{ viewer { role } }")).viewer.role).toBe("ADMIN");
      });
    }

    test("a body sent in chunks, without Content-Length, is cut off at the limit", async () => {
      const chunk = new TextEncoder().encode(" ".repeat(256 * 1024));
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent++ < 40) controller.enqueue(chunk);
          else controller.close();
        },
      });
      const res = await fetch(`${cp.url}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body, duplex: "half" } as RequestInit);
      expect(res.status).toBe(413);
      expect(((await res.json()) as any).error).toContain("RUNNEL_MAX_BODY_BYTES");
    });

    test("SQL over RUNNEL_MAX_SQL_BYTES is refused, naming the option and the limit", async () => {
      const sql = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '10');\nSELECT counter ${"+ 1 ".repeat(20_000)} AS c FROM impulse;`;
      const r = await cp.gql(`mutation ($sql: String!) { createPipeline(input: { name: "big", query: $sql }) { __typename ... on OptionError { option message } } }`, { sql });
      expect(r.createPipeline).toMatchObject({ __typename: "OptionError", option: "query" });
      expect(r.createPipeline.message).toContain(`this control plane takes queries of at most ${64 * 1024} bytes (RUNNEL_MAX_SQL_BYTES)`);
      const v = await cp.gql(`query ($sql: String!) { validateQuery(sql: $sql) { valid diagnostics { option message } } }`, { sql });
      expect(v.validateQuery.diagnostics[0].option).toBe("query");
    });

    test("a graphql-ws message over the limit closes the socket unanswered", async () => {
      const outcome = await new Promise<{ messages: string[]; code: number }>((resolve) => {
        const ws = new WebSocket(`${cp.url.replace("http", "ws")}/graphql`, ["graphql-transport-ws"]);
        const messages: string[] = [];
        ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init", payload: {} }));
        ws.onmessage = (e) => {
          messages.push(String(e.data));
          if (JSON.parse(String(e.data)).type === "connection_ack") {
            ws.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: "query ($sql: String!) { validateQuery(sql: $sql) { valid } }", variables: { sql: "x".repeat(2 * MB) } } }));
          }
        };
        ws.onclose = (e) => resolve({ messages, code: e.code });
      });
      expect(outcome.messages.map((m) => JSON.parse(m).type)).toEqual(["connection_ack"]);
      expect(outcome.code).toBe(1009); // message too big
    });
  });
}
