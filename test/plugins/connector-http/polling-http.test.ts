/**
 * The polling_http source against a small server started here (Bun.serve):
 * emit_behavior = 'changed' emits each new value once, also across a
 * restart (the last response's hash is checkpointed); 'all' emits every
 * response of a POST with its body and headers; a 5xx is retried, a 404
 * fails the job quoting the answer.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startJob, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";

setDefaultTimeout(60_000);

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);
const rowsOf = (file: string) => lines(file).map((l) => JSON.parse(l));

let value = 0;
const posts: { body: string; key: string | null }[] = [];
let flaky = 0;
const server = Bun.serve({
  port: 0,
  hostname: "127.0.0.1",
  async fetch(req) {
    const path = new URL(req.url).pathname;
    if (path === "/value") return Response.json({ v: value });
    if (path === "/post") {
      posts.push({ body: await req.text(), key: req.headers.get("x-key") });
      // Every third request fails with a 503 first: the source retries it.
      if (++flaky % 3 === 0) return new Response("busy", { status: 503 });
      return Response.json({ v: posts.length });
    }
    return new Response("nothing here", { status: 404, statusText: "Not Found" });
  },
});
afterAll(() => server.stop(true));

function pipeline(dir: string, options: string) {
  const out = join(dir, "out.jsonl");
  const sql = writeSql(
    dir,
    `CREATE TABLE src (v BIGINT) WITH (connector = 'polling_http', ${options}, type = 'source', format = 'json');
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out SELECT v FROM src;`,
  );
  return { out, args: [sql, "--checkpoint-interval", "200ms", "--quiet", "--state-dir", join(dir, "state")] };
}

describe("polling_http source", () => {
  test("'changed' emits each new value once, and not again after a restart", async () => {
    const dir = tempDir("runnel-poll-changed-");
    const p = pipeline(dir, `endpoint = 'http://127.0.0.1:${server.port}/value', poll_interval_ms = '20', emit_behavior = 'changed'`);
    value = 1;
    let job = startJob(p.args);
    await waitUntil("value 1", () => lines(p.out).length >= 1);
    value = 2;
    await waitUntil("value 2", () => lines(p.out).length >= 2);
    await Bun.sleep(200); // many polls of the same value
    expect(await job.stop()).toBe(0);
    job = startJob(p.args);
    await Bun.sleep(400); // polls of the unchanged value after the restart
    value = 3;
    await waitUntil("value 3", () => lines(p.out).length >= 3);
    expect(await job.stop()).toBe(0);
    expect(rowsOf(p.out).map((r) => r.v)).toEqual([1, 2, 3]);
  });

  test("'all' emits every response of a POST with its body and headers; 503s are retried", async () => {
    const dir = tempDir("runnel-poll-all-");
    const p = pipeline(dir, `endpoint = 'http://127.0.0.1:${server.port}/post', method = 'POST', body = '{"q":1}', headers = 'X-Key: k1', poll_interval_ms = '10'`);
    posts.length = 0;
    flaky = 0;
    const job = startJob(p.args);
    await waitUntil("30 rows", () => lines(p.out).length >= 30);
    expect(await job.stop()).toBe(0);
    expect(posts.every((x) => x.body === '{"q":1}' && x.key === "k1")).toBe(true);
    // Each successful response is a row; the 503s are not.
    const vs = rowsOf(p.out).map((r) => r.v);
    expect(vs.length).toBe(new Set(vs).size);
    expect(vs.every((v) => v % 3 !== 0)).toBe(true);
  });

  test("a 404 fails the job quoting the answer and naming 'endpoint'", async () => {
    const dir = tempDir("runnel-poll-404-");
    const p = pipeline(dir, `endpoint = 'http://127.0.0.1:${server.port}/missing'`);
    const r = await runCli(["run", ...p.args]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("option 'endpoint'");
    expect(r.stderr).toContain("HTTP 404 Not Found: nothing here");
  });
});
