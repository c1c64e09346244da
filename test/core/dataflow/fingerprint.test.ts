/**
 * State is matched to operators by a stable identity: a change that alters what
 * an operator's state means (its expressions, keys, windows, aggregates, joins,
 * the sources feeding it, a sink's target) is refused naming the operator, while
 * edits that leave every stateful operator as it was (a filter or projection
 * changed, a sink added) keep the state. Parallelism and secrets are not part of it.
 */
import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildGraph } from "../../../core/dataflow/graph.ts";
import { incompatibility, stateIdentities } from "../../../core/dataflow/fingerprint.ts";
import { createRegistry } from "../../../core/registry/loader.ts";
import type { PluginRegistry } from "../../../core/registry/registry.ts";
import { planSql } from "../../../core/sql/index.ts";
import { runCli, startJob, tempDir, writeSql } from "../../kit/cli.ts";
import { foldChanges } from "../../kit/rows.ts";

setDefaultTimeout(60_000);

let registry: PluginRegistry;
beforeAll(async () => {
  registry = await createRegistry();
});

const graphOf = (sql: string, parallelism = 1) => buildGraph(planSql(sql, registry), { parallelism, sinkMaxParallelism: () => undefined });
const identities = (sql: string, parallelism = 1) => stateIdentities(graphOf(sql, parallelism), registry);
/** What a checkpoint of `sql` labels: its operators that hold state (stateless maps and unions hold none). */
const stored = (sql: string, parallelism = 1) => {
  const graph = graphOf(sql, parallelism);
  const ids = stateIdentities(graph, registry);
  return Object.fromEntries(graph.nodes.filter((n) => !["map", "union"].includes(n.kind)).map((n) => [ids[n.id]!.stateId, ids[n.id]!.label]));
};
const mismatch = (a: string, b: string, pa = 1, pb = 1) => incompatibility(stored(a, pa), identities(b, pb));

const IMPULSE = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100', message_count = '100');\n`;
const EVENTS = (path = "/tmp/a.jsonl") =>
  `CREATE TABLE events (k TEXT, v BIGINT, ts TIMESTAMP, WATERMARK FOR ts) WITH (connector = 'single_file', path = '${path}', format = 'json', type = 'source');\n`;
const KAFKA_OUT = (password: string, topic = "out") =>
  `CREATE TABLE out (k TEXT, n BIGINT) WITH (connector = 'kafka', bootstrap_servers = 'localhost:9092', topic = '${topic}', type = 'sink', format = 'debezium_json',
     "auth.type" = 'sasl', "auth.mechanism" = 'SCRAM-SHA-256', "auth.username" = 'u', "auth.password" = '${password}');\n`;

describe("operator identities", () => {
  test("the issue's edit: another key expression and another aggregate argument are refused", () => {
    const why = mismatch(
      IMPULSE + "SELECT counter % 10 AS k, sum(counter) FROM impulse GROUP BY k;",
      IMPULSE + "SELECT counter % 3 AS k, sum(counter * 1000) FROM impulse GROUP BY k;",
    );
    expect(why).toBe('operator "1-updating_aggregate: updating aggregate by 1 key(s)" holds state but changed or was removed');
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
    // A join stores only the columns read above it: reading another one changes what its rows hold.
    expect(mismatch(join("e.k = o.k"), join("e.k = o.k").replace("SELECT e.k, o.v", "SELECT e.k, o.v, e.ts"))).toContain("join");
    expect(mismatch(join("e.k = o.k"), join("e.k = o.k").replace("SELECT e.k, o.v", "SELECT upper(e.k) AS k, o.v + 1 AS v"))).toBeNull();
  });

  test("a sink's identity counts; its secrets and the parallelism do not", () => {
    const q = "INSERT INTO out SELECT k, count(*) FROM events GROUP BY k;";
    expect(mismatch(EVENTS() + KAFKA_OUT("one") + q, EVENTS() + KAFKA_OUT("rotated") + q)).toBeNull();
    expect(mismatch(EVENTS() + KAFKA_OUT("one") + q, EVENTS() + KAFKA_OUT("one", "elsewhere") + q)).toContain("sink out");
    const sql = EVENTS() + KAFKA_OUT("one") + q;
    expect(mismatch(sql, sql, 1, 3)).toBeNull();
    // Secrets never reach the stored identities, not even hashed alone.
    expect(JSON.stringify(identities(sql))).not.toContain("one");
  });
});

describe("compatible edits keep state", () => {
  test("a filter or projection edited upstream, a projection after the aggregate, a sink added", () => {
    const q = (filter: string, select: string, extra = "") =>
      EVENTS() + KAFKA_OUT("one") + extra + `INSERT INTO out SELECT k, ${select} FROM (SELECT k, count(*) AS c FROM events WHERE ${filter} GROUP BY k);`;
    const base = q("v > 1", "c");
    expect(mismatch(base, q("v > 100 AND k <> 'x'", "c"))).toBeNull();
    expect(mismatch(base, q("v > 1", "c * 2"))).toBeNull();
    const another = `CREATE TABLE audit WITH (connector = 'stdout', type = 'sink', format = 'json');\nINSERT INTO audit SELECT k, v FROM events;\n`;
    expect(mismatch(base, q("v > 1", "c", another) + "")).toBeNull();
    // Removing the aggregate (or its sink) drops state: refused.
    expect(mismatch(base, EVENTS() + KAFKA_OUT("one") + "INSERT INTO out SELECT k, v FROM events;")).toContain("holds state but changed or was removed");
  });
});

describe("resuming from a state directory", () => {
  test("an edited query is refused naming the operator; the same query resumes; --ignore-state starts fresh", async () => {
    const dir = tempDir("runnel-fingerprint-");
    const state = join(dir, "state");
    const out = join(dir, "out.jsonl");
    const query = (key: string, arg: string) => `${IMPULSE}
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'debezium_json', type = 'sink', overwrite = 'true');
INSERT INTO out SELECT counter % ${key} AS k, sum(${arg}) AS s FROM impulse GROUP BY k;`;
    const first = await runCli(["run", writeSql(dir, query("10", "counter"), "a.sql"), "--state-dir", state, "--quiet"]);
    expect(first.code).toBe(0);

    const edited = writeSql(dir, query("3", "counter * 1000"), "b.sql");
    const refused = await runCli(["run", edited, "--state-dir", state, "--quiet"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("cannot resume from checkpoint");
    expect(refused.stderr).toContain('since it was taken, operator "1-updating_aggregate: updating aggregate by 1 key(s)" holds state but changed or was removed');
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

  test("a compatible edit resumes: a filter edited and a sink added keep the aggregate's state", async () => {
    const dir = tempDir("runnel-fingerprint-compatible-");
    const state = join(dir, "state");
    const out = join(dir, "out.jsonl");
    const query = (filter: string, extra: string) => `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '2000', message_count = '3000');
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'debezium_json', type = 'sink');
${extra}
INSERT INTO out SELECT counter % 5 AS k, count(*) AS n FROM impulse WHERE ${filter} GROUP BY k;`;
    const first = startJob([writeSql(dir, query("counter >= 0", ""), "a.sql"), "--state-dir", state, "--checkpoint-interval", "100ms", "--quiet"]);
    await Bun.sleep(700);
    expect(await first.stop()).toBe(0);
    const edited = query("counter + 1 > 0", "CREATE TABLE audit WITH (connector = 'blackhole', type = 'sink');\nINSERT INTO audit SELECT counter FROM impulse;");
    const resumed = await runCli(["run", writeSql(dir, edited, "b.sql"), "--state-dir", state, "--quiet"]);
    expect(resumed.stderr).toContain("resumed from checkpoint");
    expect(resumed.code).toBe(0);
    const changes = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(foldChanges(changes).sort((a: any, b: any) => a.k - b.k)).toEqual([0, 1, 2, 3, 4].map((k) => ({ k, n: 600 })));
  });
});
