/**
 * Issue 8, probe 4 (no request size limits): bodies over the limit (1 MB by
 * default) are refused with 413 and a message before they are read, however
 * they are sent; SQL over its own limit is refused naming the setting; a
 * graphql-ws message over the limit closes the socket; validations wait in
 * a bounded line for their turn. On PGlite and on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "../../kit/cli.ts";
import { BACKENDS, eventually, testControlPlane, type TestControlPlane } from "../../kit/control-plane.ts";

setDefaultTimeout(60_000);

const MB = 1024 * 1024;

/** A GraphQL body of about `bytes` carrying that much SQL. */
const bigValidation = (bytes: number) => JSON.stringify({ query: "query ($sql: String!) { validateQuery(sql: $sql) { valid } }", variables: { sql: `SELECT 1 ${"+ 1 ".repeat(bytes / 4)}` } });

for (const backend of BACKENDS) {
  describe(`request limits on ${backend}`, () => {
    let cp: TestControlPlane;
    beforeAll(async () => {
      cp = await testControlPlane(backend, { maxSqlBytes: 64 * 1024, maxValidations: 1 });
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

    test("with RUNNEL_MAX_VALIDATIONS=1, validations wait their turn, and beyond 16 waiting they are told to retry (503)", async () => {
      const dir = tempDir("runnel-probe-");
      const [marker, release] = [join(dir, "started"), join(dir, "release")];
      const hold = `import { existsSync, writeFileSync } from "node:fs";
        writeFileSync(${JSON.stringify(marker)}, "");
        const until = Date.now() + 15_000;
        while (!existsSync(${JSON.stringify(release)}) && Date.now() < until) {}
        export default { args: [], returns: "BIGINT", fn: () => 1 };`;
      const holding = cp.gql(`mutation ($d: String!) { createUdf(input: { name: "hold", definition: $d }) { __typename } }`, { d: hold });
      await eventually("the only slot to be taken", () => existsSync(marker));
      const sql = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '10');\nSELECT counter FROM impulse;`;
      // 17 at once: 16 find a place in line, one does not — and is answered first, while the others still wait.
      const asked = Array.from({ length: 17 }, () => cp.gqlReply(`query ($sql: String!) { validateQuery(sql: $sql, udfs: []) { valid } }`, { sql }));
      const first = await Promise.race(asked);
      expect(first.status).toBe(503);
      expect(first.body.errors[0].message).toContain("16 validations are waiting already; try again in a moment");
      writeFileSync(release, "");
      expect((await holding).createUdf.__typename).toBe("UdfPayload");
      const answers = await Promise.all(asked);
      expect(answers.filter((r) => r.status === 503).length).toBe(1);
      expect(answers.filter((r) => r.body.data?.validateQuery.valid === true).length).toBe(16);
    });
  });
}
