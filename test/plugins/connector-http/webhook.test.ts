/**
 * The webhook sink against a small server started here (Bun.serve): batches
 * as JSON arrays with an {{ ENV }} secret in the headers, 503s and 429s
 * retried with backoff; every row arrives at least once through kill -9; a
 * 400 fails the job quoting the answer; exhausted retries name the option.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { runCli, startCli, tempDir, writeSql } from "../../kit/cli.ts";
import { sinkUnderKills } from "../../kit/sink-crash.ts";

setDefaultTimeout(60_000);

const received = new Map<string, { bodies: unknown[]; auth: (string | null)[]; types: (string | null)[]; requests: number }>();
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  async fetch(req) {
    const path = new URL(req.url).pathname;
    let r = received.get(path);
    if (!r) received.set(path, (r = { bodies: [], auth: [], types: [], requests: 0 }));
    r.requests++;
    if (path.startsWith("/bad")) return new Response("field 'v' is not allowed", { status: 400, statusText: "Bad Request" });
    if (path.startsWith("/down")) return new Response("down", { status: 503 });
    // Every fourth request is turned away (503, or 429 with Retry-After): the sink must try it again.
    if (path.startsWith("/flaky") && r.requests % 4 === 0) return r.requests % 8 === 0 ? new Response("slow down", { status: 429, headers: { "Retry-After": "0" } }) : new Response("busy", { status: 503 });
    r.bodies.push(await req.json());
    r.auth.push(req.headers.get("authorization"));
    r.types.push(req.headers.get("content-type"));
    return new Response(null, { status: 204 });
  },
});
afterAll(() => server.stop(true));
const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;

function boundedJob(dir: string, options: string, count: number) {
  return writeSql(
    dir,
    `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '0', message_count = '${count}');
CREATE TABLE out (id BIGINT, v TEXT) WITH (connector = 'webhook', ${options}, type = 'sink', format = 'json');
INSERT INTO out SELECT CAST(counter AS BIGINT) AS id, CONCAT('v', CAST(counter AS TEXT)) AS v FROM imp;`,
  );
}

describe("webhook sink", () => {
  test("batches of 50 as JSON arrays, with an {{ ENV }} secret in the headers; 503 and 429 answers are retried", async () => {
    const dir = tempDir("runnel-webhook-batch-");
    const path = `/flaky-${Date.now()}`;
    const sql = boundedJob(dir, `endpoint = '${url(path)}', headers = 'Authorization: Bearer {{ HOOK_TOKEN }}', 'batch.max_records' = '50', 'retry.initial_backoff' = '5ms'`, 500);
    const proc = startCli(["run", sql, "--state-dir", join(dir, "state"), "--quiet"], undefined, { HOOK_TOKEN: "tkn" });
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect(code, stderr).toBe(0);
    const r = received.get(path)!;
    const rows = (r.bodies as { id: number; v: string }[][]).flat();
    expect(rows.map((x) => x.id).sort((a, b) => a - b)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(rows.find((x) => x.id === 42)).toEqual({ id: 42, v: "v42" });
    expect(r.bodies.every((b) => Array.isArray(b) && b.length <= 50)).toBe(true);
    expect(new Set(r.auth)).toEqual(new Set(["Bearer tkn"]));
    expect(new Set(r.types)).toEqual(new Set(["application/json"]));
    expect(r.requests).toBeGreaterThan(r.bodies.length); // some were turned away and retried
  });

  test("one row per request by default; kill -9 three times: every row arrives at least once", async () => {
    const path = `/crash-${Date.now()}`;
    const report = await sinkUnderKills({
      sinkOptions: `connector = 'webhook', endpoint = '${url(path)}', format = 'json'`,
      readIds: async () => ((received.get(path)?.bodies ?? []) as { id: number }[]).map((b) => b.id),
      count: 2000,
    });
    expect(report.missing).toEqual([]);
  });

  test("a 400 fails the job quoting the answer and naming 'endpoint'", async () => {
    const dir = tempDir("runnel-webhook-400-");
    const r = await runCli(["run", boundedJob(dir, `endpoint = '${url("/bad")}'`, 5), "--quiet"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("option 'endpoint'");
    expect(r.stderr).toContain("HTTP 400 Bad Request: field 'v' is not allowed");
  });

  test("retries run out: the job fails naming 'retry.max_attempts' and the last answer", async () => {
    const dir = tempDir("runnel-webhook-down-");
    const path = `/down-${Date.now()}`;
    const r = await runCli(["run", boundedJob(dir, `endpoint = '${url(path)}', 'retry.max_attempts' = '3', 'retry.initial_backoff' = '1ms'`, 1), "--quiet"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("failed 3 times (option 'retry.max_attempts')");
    expect(r.stderr).toContain("HTTP 503");
    expect(received.get(path)!.requests).toBe(3);
  });

  test("batching a binary format is refused naming 'batch.max_records'", async () => {
    const dir = tempDir("runnel-webhook-avro-");
    const sql = writeSql(
      dir,
      `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '0', message_count = '5');
CREATE TABLE out (b BYTEA) WITH (connector = 'webhook', endpoint = '${url("/x")}', 'batch.max_records' = '10', type = 'sink', format = 'raw_bytes');
INSERT INTO out SELECT CAST(CAST(counter AS TEXT) AS BYTEA) AS b FROM imp;`,
    );
    const r = await runCli(["run", sql, "--quiet"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("'batch.max_records'");
  });
});
