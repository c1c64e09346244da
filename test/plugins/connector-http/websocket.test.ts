/**
 * The WebSocket source against a small server started here (Bun.serve): the
 * subscription messages are sent on every open (with headers), messages are
 * read as rows, a socket the server closes is reopened and resubscribed, and
 * a bad subscription_messages option is refused naming it.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startJob, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";

setDefaultTimeout(60_000);

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);
const rowsOf = (file: string) => lines(file).map((l) => JSON.parse(l));

interface Conn {
  subscriptions: string[];
  token: string | null;
}
const conns: Conn[] = [];

/** Waits for {"type":"subscribe","channel":...} messages; after the last expected one, sends 100 rows per channel; the first connection is then closed. */
const server = Bun.serve<{ conn: Conn }>({
  port: 0,
  hostname: "127.0.0.1",
  fetch(req, srv) {
    const conn: Conn = { subscriptions: [], token: req.headers.get("x-token") };
    conns.push(conn);
    return srv.upgrade(req, { data: { conn } }) ? undefined : new Response("upgrade failed", { status: 400 });
  },
  websocket: {
    message(ws, message) {
      const { conn } = ws.data;
      conn.subscriptions.push(String(message));
      if (conn.subscriptions.length < 2) return;
      const round = conns.indexOf(conn);
      for (const s of conn.subscriptions) {
        const channel = JSON.parse(s).channel;
        for (let i = 0; i < 100; i++) ws.send(JSON.stringify({ channel, round, i }));
      }
      if (round === 0) setTimeout(() => ws.close(1011, "going away"), 50);
    },
  },
});
afterAll(() => server.stop(true));

describe("websocket source", () => {
  test("subscription messages on every open, with headers; a closed socket is reopened and resubscribed", async () => {
    const dir = tempDir("runnel-ws-");
    const out = join(dir, "out.jsonl");
    const sql = writeSql(
      dir,
      `CREATE TABLE src (channel TEXT, round INT, i INT) WITH (connector = 'websocket', endpoint = 'ws://127.0.0.1:${server.port}/feed',
  headers = 'X-Token: {{ WS_TEST_TOKEN }}',
  subscription_message = '{"type":"subscribe","channel":"prices"}',
  subscription_messages = '["{\\"type\\":\\"subscribe\\",\\"channel\\":\\"trades\\"}"]',
  type = 'source', format = 'json');
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out SELECT channel, round, i FROM src;`,
    );
    conns.length = 0;
    const job = startJob([sql, "--checkpoint-interval", "200ms", "--parallelism", "2", "--quiet", "--state-dir", join(dir, "state")], { WS_TEST_TOKEN: "t0k" });
    await waitUntil("two rounds of 200 rows", () => lines(out).length >= 400);
    expect(await job.stop()).toBe(0);
    expect(conns.length).toBeGreaterThanOrEqual(2);
    for (const c of conns.slice(0, 2)) {
      expect(c.token).toBe("t0k");
      expect(c.subscriptions.map((s) => JSON.parse(s).channel)).toEqual(["prices", "trades"]);
    }
    const rows = rowsOf(out);
    for (const round of [0, 1]) {
      for (const channel of ["prices", "trades"]) {
        expect(rows.filter((r) => r.round === round && r.channel === channel).map((r) => r.i)).toEqual(Array.from({ length: 100 }, (_, i) => i));
      }
    }
  });

  test("subscription_messages that is not a JSON array is refused naming the option", async () => {
    const dir = tempDir("runnel-ws-refuse-");
    const sql = writeSql(
      dir,
      `CREATE TABLE src (i INT) WITH (connector = 'websocket', endpoint = 'ws://127.0.0.1:${server.port}/', subscription_messages = 'subscribe', type = 'source', format = 'json');
CREATE TABLE out WITH (connector = 'single_file', path = '${join(dir, "out.jsonl")}', format = 'json', type = 'sink');
INSERT INTO out SELECT i FROM src;`,
    );
    const r = await runCli(["run", sql, "--quiet"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("option 'subscription_messages'");
  });
});
