/**
 * The SSE source against a small server started here (Bun.serve) that
 * numbers its events and resumes after Last-Event-ID: through kill -9 the
 * output has every event exactly once; event types are filtered and headers
 * (with an {{ ENV }} secret) are sent; a refusal fails the job with the
 * server's answer.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startCli, startJob, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";

setDefaultTimeout(60_000);

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);
const rowsOf = (file: string) => lines(file).map((l) => JSON.parse(l));

const seen = { lastEventIds: [] as (string | null)[], auth: [] as (string | null)[] };

/** Events n = 0, 1, 2... (id n, type 'a' for even n, 'b' for odd), from after Last-Event-ID, 20 every 10 ms, forever. */
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  fetch(req) {
    const url = new URL(req.url);
    if (url.pathname === "/refuse") return new Response("no token", { status: 401, statusText: "Unauthorized" });
    const last = req.headers.get("last-event-id");
    seen.lastEventIds.push(last);
    seen.auth.push(req.headers.get("authorization"));
    let n = last === null ? 0 : Number(last) + 1;
    const encoder = new TextEncoder();
    let timer: ReturnType<typeof setInterval>;
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(encoder.encode("retry: 100\n: a comment\n\n"));
        timer = setInterval(() => {
          let chunk = "";
          for (let i = 0; i < 20; i++, n++) chunk += `id: ${n}\nevent: ${n % 2 === 0 ? "a" : "b"}\ndata: {"n": ${n}}\n\n`;
          try {
            controller.enqueue(encoder.encode(chunk));
          } catch {
            clearInterval(timer);
          }
        }, 10);
      },
      cancel() {
        clearInterval(timer);
      },
    });
    return new Response(body, { headers: { "Content-Type": "text/event-stream" } });
  },
});
afterAll(() => server.stop(true));
const endpoint = (path = "/events") => `http://127.0.0.1:${server.port}${path}`;

function pipeline(dir: string, extra = "", columns = "n BIGINT", select = "SELECT n FROM src") {
  const out = join(dir, "out.jsonl");
  const sql = writeSql(
    dir,
    `CREATE TABLE src (${columns}) WITH (connector = 'sse', endpoint = '${endpoint()}', type = 'source', format = 'json'${extra});
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out ${select};`,
  );
  const args = [sql, "--checkpoint-interval", "200ms", "--parallelism", "2", "--quiet", "--state-dir", join(dir, "state")];
  return { out, args };
}

describe("sse source", () => {
  test("kill -9 twice, then a stop: the server resumes after the checkpointed Last-Event-ID, so every event is in the output once", async () => {
    const dir = tempDir("runnel-sse-crash-");
    const p = pipeline(dir);
    seen.lastEventIds.length = 0;
    for (let round = 0; round < 2; round++) {
      const job = startJob(p.args);
      const before = lines(p.out).length;
      await waitUntil(`output to grow in round ${round}`, () => lines(p.out).length > before + 300);
      await Bun.sleep(100 + round * 170);
      await job.kill();
    }
    const job = startJob(p.args);
    const before = lines(p.out).length;
    await waitUntil("more output", () => lines(p.out).length > before + 300);
    expect(await job.stop()).toBe(0);
    const ns = rowsOf(p.out).map((r) => r.n);
    expect(ns).toEqual(Array.from({ length: ns.length }, (_, i) => i));
    // The restarts asked to resume (the first run had no id yet).
    expect(seen.lastEventIds[0]).toBeNull();
    expect(seen.lastEventIds.slice(1).every((id) => id !== null)).toBe(true);
  });

  test("'events' keeps the named types; headers carry an {{ ENV }} secret; event_type and event_id metadata", async () => {
    const dir = tempDir("runnel-sse-filter-");
    const p = pipeline(
      dir,
      ", events = 'b', headers = 'Authorization: Bearer {{ SSE_TEST_TOKEN }},X-Other: 1'",
      "n BIGINT, t TEXT METADATA FROM 'event_type', id TEXT METADATA FROM 'event_id'",
      "SELECT n, t, id FROM src",
    );
    seen.auth.length = 0;
    const job = startJob(p.args, { SSE_TEST_TOKEN: "s3cret" });
    await waitUntil("100 rows", () => lines(p.out).length >= 100);
    expect(await job.stop()).toBe(0);
    const rows = rowsOf(p.out);
    expect(rows.every((r) => r.n % 2 === 1 && r.t === "b" && r.id === String(r.n))).toBe(true);
    expect(seen.auth[0]).toBe("Bearer s3cret");
  });

  test("an answer that retrying cannot fix fails the job, quoting it and naming 'endpoint'", async () => {
    const dir = tempDir("runnel-sse-refuse-");
    const sql = writeSql(
      dir,
      `CREATE TABLE src (n BIGINT) WITH (connector = 'sse', endpoint = '${endpoint("/refuse")}', type = 'source', format = 'json');
CREATE TABLE out WITH (connector = 'single_file', path = '${join(dir, "out.jsonl")}', format = 'json', type = 'sink');
INSERT INTO out SELECT n FROM src;`,
    );
    const proc = startCli(["run", sql, "--quiet"]);
    const [code, stderr] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
    expect(code).not.toBe(0);
    expect(stderr).toContain("option 'endpoint'");
    expect(stderr).toContain("HTTP 401 Unauthorized: no token");
  });
});
