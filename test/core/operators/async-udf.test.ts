/**
 * Async UDFs are awaited (before: their Promise was written as {}), ordered or
 * not, within a concurrency limit and a timeout, exactly-once across kill -9;
 * failures fail the job naming the UDF and the row, or drop the row under
 * bad_data = 'drop'.
 */
import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startCli, tempDir, writeSql } from "../../kit/cli.ts";

setDefaultTimeout(120_000);

let project: string;
let input: string;

const UDFS = `
let inFlight = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export default {
  name: "test-async-udfs",
  udfs: [
    // Later rows answer sooner, so completion order differs from input order.
    { name: "slow_double", args: [{ kind: "int", bits: 64 }], returns: { kind: "int", bits: 64 },
      fn: async (x) => { await sleep(x % 5 === 0 ? 15 : 1); return x * 2; } },
    { name: "loose_double", args: [{ kind: "int", bits: 64 }], returns: { kind: "int", bits: 64 }, async: { ordered: false },
      fn: async (x) => { await sleep(x % 5 === 0 ? 15 : 1); return x * 2; } },
    // Returns how many calls were in flight when it started.
    { name: "in_flight", args: [{ kind: "int", bits: 64 }], returns: { kind: "int", bits: 64 }, async: { allowedInFlight: 4 },
      fn: async (x) => { inFlight++; const now = inFlight; await sleep(3); inFlight--; return now; } },
    { name: "hangs_on_5", args: [{ kind: "int", bits: 64 }], returns: { kind: "int", bits: 64 }, async: { timeoutMs: 200 },
      fn: (x) => (x === 5 ? new Promise(() => {}) : Promise.resolve(x)) },
    { name: "throws_on_7", args: [{ kind: "int", bits: 64 }], returns: { kind: "int", bits: 64 },
      fn: async (x) => { if (x === 7) throw new Error("seven is not allowed"); return x; } },
    { name: "label", args: [{ kind: "string" }], returns: { kind: "string" }, fn: async (s) => "<" + s + ">" },
    // Not declared async, yet returns a Promise.
    { name: "sneaky", args: [{ kind: "int", bits: 64 }], returns: { kind: "int", bits: 64 }, fn: (x) => Promise.resolve(x) },
  ],
};
`;

beforeAll(() => {
  project = tempDir("runnel-async-udf-");
  writeFileSync(join(project, "udfs.ts"), UDFS);
  writeFileSync(join(project, "runnel.config.ts"), `export default { plugins: ["./udfs.ts"] };\n`);
  input = join(project, "in.jsonl");
  writeFileSync(input, Array.from({ length: 600 }, (_, i) => JSON.stringify({ id: i, name: `n${i}` })).join("\n") + "\n");
});

const SOURCE = (badData = "drop") =>
  `CREATE TABLE src (id BIGINT, name TEXT) WITH (connector = 'single_file', path = '${input}', format = 'json', type = 'source', bad_data = '${badData}');\n`;

async function select(query: string, badData?: string) {
  const r = await runCli(["run", writeSql(project, SOURCE(badData) + query, `q${Math.random().toString(36).slice(2)}.sql`), "--quiet"], { cwd: project });
  return { ...r, rows: r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l)) };
}

describe("async UDFs", () => {
  test("ordered: awaited values, in input order, in SELECT and WHERE, after a plain filter", async () => {
    const r = await select("SELECT id, slow_double(id) + 1 AS d, label(name) AS l FROM src WHERE id % 2 = 0 AND slow_double(id) < 1000;");
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const want = Array.from({ length: 600 }, (_, i) => i).filter((i) => i % 2 === 0 && i * 2 < 1000);
    expect(r.rows).toEqual(want.map((i) => ({ id: i, d: i * 2 + 1, l: `<n${i}>` })));
  });

  test("unordered: every value once, in completion order", async () => {
    const r = await select("SELECT id, loose_double(id) AS d FROM src;");
    expect(r.code).toBe(0);
    expect(r.rows.length).toBe(600);
    expect(r.rows.every((x) => x.d === x.id * 2)).toBe(true);
    expect(new Set(r.rows.map((x) => x.id)).size).toBe(600);
    // Every fifth row answers late, so it comes out after rows read behind it.
    expect(r.rows.map((x) => x.id)).not.toEqual(Array.from({ length: 600 }, (_, i) => i));
  });

  test("no more calls in flight than allowedInFlight", async () => {
    const r = await select("SELECT in_flight(id) AS n FROM src;");
    expect(r.code).toBe(0);
    const max = Math.max(...r.rows.map((x) => x.n));
    expect(max).toBeLessThanOrEqual(4);
    expect(max).toBeGreaterThan(1);
  });

  test("a timeout or a throw fails the job naming the UDF and the row under bad_data = 'fail'", async () => {
    const timedOut = await select("SELECT hangs_on_5(id) FROM src;", "fail");
    expect(timedOut.code).toBe(1);
    expect(timedOut.stderr).toContain("async UDF hangs_on_5() timed out after 200 ms (async.timeoutMs) on the row {id: 5, name: \"n5\"}");
    const threw = await select("SELECT throws_on_7(id) FROM src;", "fail");
    expect(threw.code).toBe(1);
    expect(threw.stderr).toContain("async UDF throws_on_7() threw: seven is not allowed on the row {id: 7, name: \"n7\"}");
  });

  test("under bad_data = 'drop' the failing rows are dropped and the rest go on", async () => {
    const r = await select("SELECT id, hangs_on_5(id) AS a, throws_on_7(id) AS b FROM src;", "drop");
    expect(r.code).toBe(0);
    expect(r.rows.map((x) => x.id)).toEqual(Array.from({ length: 600 }, (_, i) => i).filter((i) => i !== 5 && i !== 7));
  });

  test("a UDF not declared async that returns a Promise fails instead of writing {}", async () => {
    const r = await select("SELECT sneaky(id) FROM src;");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("UDF sneaky() returned a Promise; declare it async");
  });

  test("where they cannot run, they are refused with the rewrite to use", async () => {
    const grouped = await select("SELECT slow_double(id) AS k, count(*) FROM src GROUP BY slow_double(id);");
    expect(grouped.code).toBe(2);
    expect(grouped.stderr).toContain("async UDF slow_double() can be called in SELECT, WHERE and HAVING, not in GROUP BY; compute it in a subquery");
    const nested = await select("SELECT slow_double(slow_double(id)) FROM src;");
    expect(nested.code).toBe(2);
    expect(nested.stderr).toContain("is an argument of async UDF");
    const updating = await select("SELECT slow_double(n) FROM (SELECT id % 3 AS k, count(*) AS n FROM src GROUP BY k);");
    expect(updating.code).toBe(2);
    expect(updating.stderr).toContain("cannot read an updating result");
    // Computed in a subquery, it can be grouped by.
    const sub = await select("SELECT d % 3 AS k, count(*) AS n FROM (SELECT slow_double(id) AS d FROM src) GROUP BY k;");
    expect(sub.code).toBe(0);
  });

  test("exactly-once through kill -9: the output equals an uninterrupted run", async () => {
    const query = (out: string) => `
CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '2000', message_count = '3000', event_time_interval = '10ms', start_time = '2024-01-01T00:00:00Z');
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out SELECT counter, slow_double(CAST(counter AS BIGINT)) AS d, loose_double(CAST(counter AS BIGINT)) AS e FROM impulse;`;
    const lines = (f: string) => (existsSync(f) ? readFileSync(f, "utf8").split("\n").filter(Boolean) : []);
    const reference = join(project, "ref.jsonl");
    expect((await runCli(["run", writeSql(project, query(reference), "ref.sql"), "--quiet"], { cwd: project })).code).toBe(0);
    expect(lines(reference).length).toBe(3000);
    const out = join(project, "crashed.jsonl");
    const args = ["run", writeSql(project, query(out), "crash.sql"), "--state-dir", join(project, "state"), "--checkpoint-interval", "150ms", "--quiet"];
    for (const delay of [500, 800, 650]) {
      const proc = startCli(args, project);
      await Bun.sleep(delay);
      proc.kill("SIGKILL");
      await proc.exited;
    }
    expect((await runCli(args, { cwd: project })).code).toBe(0);
    expect(lines(out).sort()).toEqual(lines(reference).sort());
  });
});
