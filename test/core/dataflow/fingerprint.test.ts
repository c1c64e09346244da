/**
 * A checkpoint resumes only the pipeline whose state it holds: every change that
 * alters what state means (expressions, keys, windows, aggregates, joins, sources,
 * sinks) is refused naming the operator; parallelism and secrets are not part of it.
 */
import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildGraph } from "../../../core/dataflow/graph.ts";
import { pipelineSignatures, signatureMismatch } from "../../../core/dataflow/fingerprint.ts";
import { createRegistry } from "../../../core/registry/loader.ts";
import type { PluginRegistry } from "../../../core/registry/registry.ts";
import { planSql } from "../../../core/sql/index.ts";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";

setDefaultTimeout(60_000);

let registry: PluginRegistry;
beforeAll(async () => {
  registry = await createRegistry();
});

const signatures = (sql: string, parallelism = 1) => pipelineSignatures(buildGraph(planSql(sql, registry), { parallelism, sinkMaxParallelism: () => undefined }), registry);
const mismatch = (a: string, b: string) => signatureMismatch(signatures(a), signatures(b));

const IMPULSE = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100', message_count = '100');\n`;
const EVENTS = (path = "/tmp/a.jsonl") =>
  `CREATE TABLE events (k TEXT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts) WITH (connector = 'single_file', path = '${path}', format = 'json', type = 'source');\n`;
const KAFKA_OUT = (password: string, topic = "out") =>
  `CREATE TABLE out (k TEXT, n BIGINT) WITH (connector = 'kafka', bootstrap_servers = 'localhost:9092', topic = '${topic}', type = 'sink', format = 'debezium_json',
     "auth.type" = 'sasl', "auth.mechanism" = 'SCRAM-SHA-256', "auth.username" = 'u', "auth.password" = '${password}');\n`;

describe("pipeline signatures", () => {
  test("the issue's edit: another key expression and another aggregate argument are refused", () => {
    const why = mismatch(
      IMPULSE + "SELECT counter % 10 AS k, sum(counter) FROM impulse GROUP BY k;",
      IMPULSE + "SELECT counter % 3 AS k, sum(counter * 1000) FROM impulse GROUP BY k;",
    );
    expect(why).toBe('operator 1-updating_aggregate ("updating aggregate by 1 key(s)") has other expressions, keys, types or options');
  });

  test("each kind of change that alters state is detected", () => {
    const base = EVENTS() + "SELECT tumble(INTERVAL '10' SECOND) AS w, k, count(*) FILTER (WHERE v > 1) AS n FROM events GROUP BY w, k;";
    const edits = [
      base.replace("'10' SECOND", "'20' SECOND"),
      base.replace("v > 1", "v > 2"),
      base.replace("count(*) FILTER (WHERE v > 1)", "count(*)"),
      base.replace("GROUP BY w, k", "GROUP BY w, upper(k)").replace("SELECT tumble(INTERVAL '10' SECOND) AS w, k,", "SELECT tumble(INTERVAL '10' SECOND) AS w, upper(k),"),
      base.replace("/tmp/a.jsonl", "/tmp/b.jsonl"),
      base.replace("v BIGINT", "v INT"),
    ];
    expect(mismatch(base, base)).toBeNull();
    for (const edit of edits) {
      expect(edit).not.toBe(base);
      expect(mismatch(base, edit)).not.toBeNull();
    }
    const join = (cond: string) =>
      EVENTS() + EVENTS("/tmp/b.jsonl").replace("TABLE events", "TABLE other") + `SELECT e.k, o.v FROM events e JOIN other o ON ${cond};`;
    expect(mismatch(join("e.k = o.k"), join("e.k = o.k"))).toBeNull();
    expect(mismatch(join("e.k = o.k"), join("upper(e.k) = o.k"))).not.toBeNull();
    expect(mismatch(join("e.k = o.k"), join("e.k = o.k AND e.v = o.v"))).not.toBeNull();
  });

  test("a sink's identity counts; its secrets and the parallelism do not", () => {
    const q = "INSERT INTO out SELECT k, count(*) FROM events GROUP BY k;";
    expect(mismatch(EVENTS() + KAFKA_OUT("one") + q, EVENTS() + KAFKA_OUT("rotated") + q)).toBeNull();
    expect(mismatch(EVENTS() + KAFKA_OUT("one") + q, EVENTS() + KAFKA_OUT("one", "elsewhere") + q)).toContain("sink out");
    const sql = EVENTS() + KAFKA_OUT("one") + q;
    expect(signatureMismatch(signatures(sql, 1), signatures(sql, 3))).toBeNull();
    // Secrets never reach the stored signatures, not even hashed alone.
    expect(JSON.stringify(signatures(sql))).not.toContain("one");
  });
});

describe("resuming from a state directory", () => {
  test("an edited query is refused naming the operator; the same query resumes; --ignore-state starts fresh", async () => {
    const dir = tempDir("runnel-fingerprint-");
    const state = join(dir, "state");
    const out = join(dir, "out.jsonl");
    const query = (key: string, arg: string) => `${IMPULSE}
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'debezium_json', type = 'sink');
INSERT INTO out SELECT counter % ${key} AS k, sum(${arg}) AS s FROM impulse GROUP BY k;`;
    const first = await runCli(["run", writeSql(dir, query("10", "counter"), "a.sql"), "--state-dir", state, "--quiet"]);
    expect(first.code).toBe(0);

    const edited = writeSql(dir, query("3", "counter * 1000"), "b.sql");
    const refused = await runCli(["run", edited, "--state-dir", state, "--quiet"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("cannot resume from checkpoint");
    expect(refused.stderr).toContain("since it was taken, operator 1-updating_aggregate");
    expect(refused.stderr).toContain("--ignore-state");

    const same = await runCli(["run", writeSql(dir, query("10", "counter"), "c.sql"), "--state-dir", state, "--quiet"]);
    expect(same.code).toBe(0);
    expect(same.stderr).toContain("resumed from checkpoint");

    const fresh = await runCli(["run", edited, "--state-dir", state, "--ignore-state", "--quiet"]);
    expect(fresh.code).toBe(0);
    expect(fresh.stderr).not.toContain("resumed");
    const last = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((c) => c.after);
    // The fresh run sums counter * 1000 per counter % 3 from scratch: keys 0..2 only.
    expect(new Set(last.map((c) => c.after.k))).toEqual(new Set([0, 1, 2]));
  });
});
