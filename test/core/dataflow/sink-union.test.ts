/**
 * A sink table is one sink: several INSERTs into it are unioned in front of a
 * single writer, so none overwrites another's output, and exactly-once holds
 * for the merged sink through kill -9.
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startCli, tempDir, writeSql } from "../../kit/cli.ts";
import { planSqlText } from "../../../core/sql/planner.ts";
import { buildGraph } from "../../../core/dataflow/graph.ts";
import { fixtureRegistry } from "../../kit/fixture-registry.ts";
import { createRegistry } from "../../../core/registry/loader.ts";

setDefaultTimeout(120_000);

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);

/** 120 cars; the two INSERTs below overlap on ids 30..49, which must then appear twice. */
function carsFile(dir: string): string {
  const file = join(dir, "cars.jsonl");
  const rows = Array.from({ length: 120 }, (_, i) => JSON.stringify({ id: i, make: ["vw", "fiat", "kia"][i % 3] }));
  writeFileSync(file, rows.join("\n") + "\n");
  return file;
}

function twoInserts(input: string, sink: string) {
  return `
CREATE TABLE cars (id BIGINT, make TEXT) WITH (connector = 'single_file', path = '${input}', format = 'json', type = 'source');
${sink}
INSERT INTO out SELECT id, make FROM cars WHERE id < 50;
INSERT INTO out SELECT id, upper(make) FROM cars WHERE id >= 30;
`;
}

function expected(): string[] {
  const out: string[] = [];
  for (let i = 0; i < 120; i++) {
    const make = ["vw", "fiat", "kia"][i % 3]!;
    if (i < 50) out.push(JSON.stringify({ id: i, make }));
    if (i >= 30) out.push(JSON.stringify({ id: i, make: make.toUpperCase() }));
  }
  return out.sort();
}

describe("several INSERTs into one sink table", () => {
  test("plan one sink fed by a union of both queries", async () => {
    const registry = await fixtureRegistry();
    const plan = planSqlText(twoInserts("/tmp/x.jsonl", "CREATE TABLE out (id BIGINT, make TEXT) WITH (connector = 'single_file', path = '/tmp/y.jsonl', format = 'json', type = 'sink');"), registry);
    expect(plan.sinks.length).toBe(1);
    expect(plan.sinks[0]!.input.kind).toBe("union");
    const graph = buildGraph(plan, { parallelism: 2, sinkMaxParallelism: () => 1 });
    expect(graph.nodes.filter((n) => n.kind === "sink").length).toBe(1);
  });

  test("every sink connector gets one writer for all the INSERTs into its table", async () => {
    const registry = await createRegistry();
    const sinks: Record<string, string> = {
      single_file: "path = '/tmp/out.jsonl', format = 'json'",
      filesystem: "path = '/tmp/out-dir', format = 'json'",
      delta: "path = '/tmp/out-delta', format = 'parquet'",
      iceberg: "path = '/tmp/out-iceberg', format = 'parquet'",
      kafka: "bootstrap_servers = 'localhost:9092', topic = 'out', format = 'json'",
      kinesis: "stream_name = 'out', format = 'json', aws_region = 'us-east-1'",
      postgres: "connection_string = 'postgres://localhost/db', table_name = 'out'",
      stdout: "format = 'json'",
      blackhole: "",
      mqtt: "url = 'mqtt://localhost:1883', topic = 'out', format = 'json'",
      nats: "servers = 'nats://localhost:4222', subject = 'out', format = 'json'",
      rabbitmq: "host = 'localhost', 'sink.exchange' = 'amq.direct', 'sink.routing_key' = 'out', format = 'json'",
      redis: "address = 'redis://localhost:6379', target = 'list', 'target.key_prefix' = 'out', format = 'json'",
      webhook: "endpoint = 'http://localhost:9000/hook', format = 'json'",
    };
    const withSink = [...registry.connectors.values()].filter((c) => c.sink).map((c) => c.name).sort();
    expect(withSink).toEqual(Object.keys(sinks).sort());
    for (const [connector, options] of Object.entries(sinks)) {
      const sql = twoInserts("/tmp/in.jsonl", `CREATE TABLE out (id BIGINT, make TEXT) WITH (connector = '${connector}', type = 'sink'${options ? `, ${options}` : ""});`) +
        "INSERT INTO out SELECT id + 1000, make FROM cars;";
      const plan = planSqlText(sql, registry);
      expect(plan.sinks.length).toBe(1);
      const union = plan.sinks[0]!.input;
      expect(union.kind === "union" && union.inputs.length).toBe(3);
    }
  });

  test("single_file: every row of both queries is written (78 of 41 were lost before)", async () => {
    const dir = tempDir("runnel-union-");
    const out = join(dir, "out.jsonl");
    const sql = writeSql(dir, twoInserts(carsFile(dir), `CREATE TABLE out (id BIGINT, make TEXT) WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink', overwrite = 'true');`));
    for (const parallelism of ["1", "2"]) {
      const r = await runCli(["run", sql, "--parallelism", parallelism, "--quiet", "--state-dir", join(dir, `state-${parallelism}`)]);
      expect(r.stderr).not.toContain("error");
      expect(r.code).toBe(0);
      expect(lines(out).sort()).toEqual(expected());
    }
  });

  test("filesystem: one set of files holds both queries' rows", async () => {
    const dir = tempDir("runnel-union-fs-");
    const outDir = join(dir, "files");
    const sql = writeSql(dir, twoInserts(carsFile(dir), `CREATE TABLE out (id BIGINT, make TEXT) WITH (connector = 'filesystem', path = '${outDir}', format = 'json', type = 'sink');`));
    const r = await runCli(["run", sql, "--parallelism", "2", "--quiet"]);
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const written = readdirSync(outDir, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith(".json") || f.endsWith(".jsonl"))
      .flatMap((f) => lines(join(outDir, f)));
    expect(written.sort()).toEqual(expected());
  });

  test("stdout: each row once", async () => {
    const dir = tempDir("runnel-union-stdout-");
    const sql = writeSql(dir, twoInserts(carsFile(dir), `CREATE TABLE out (id BIGINT, make TEXT) WITH (connector = 'stdout', type = 'sink');`));
    const r = await runCli(["run", sql, "--quiet"]);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n").filter(Boolean).sort()).toEqual(expected());
  });

  test("kill -9 while both queries write: the output equals an uninterrupted run", async () => {
    const dir = tempDir("runnel-union-crash-");
    const query = (out: string) => `
CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '3000', message_count = '4000', event_time_interval = '10ms', start_time = '2024-01-01T00:00:00Z');
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out SELECT counter, 'even' AS side FROM impulse WHERE counter % 2 = 0;
INSERT INTO out SELECT counter, 'small' AS side FROM impulse WHERE counter < 1000;
`;
    const reference = join(dir, "reference.jsonl");
    // impulse counts per subtask of the first run: two counters at parallelism 2.
    const ref = await runCli(["run", writeSql(dir, query(reference), "ref.sql"), "--parallelism", "2", "--quiet"]);
    expect(ref.code).toBe(0);
    expect(lines(reference).length).toBe(2 * (2000 + 1000));

    const out = join(dir, "crashed.jsonl");
    const sql = writeSql(dir, query(out), "crash.sql");
    const state = join(dir, "state");
    const args = ["run", sql, "--state-dir", state, "--checkpoint-interval", "150ms", "--parallelism", "2", "--quiet"];
    for (const delay of [400, 700, 550]) {
      const proc = startCli(args);
      await Bun.sleep(delay);
      proc.kill("SIGKILL");
      await proc.exited;
    }
    const final = await runCli(args);
    expect(final.code).toBe(0);
    expect(lines(out).sort()).toEqual(lines(reference).sort());
  });
});
