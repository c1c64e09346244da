/**
 * Query size: long expressions plan, compile and run in time linear in their
 * length; nesting and length past the configured limits are refused at the
 * place they are written, naming the limit.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { compileMap } from "../../../core/expr/index.ts";
import { DEFAULT_SQL_LIMITS, planSql, SqlError } from "../../../core/sql/index.ts";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { fixtureRegistry } from "../../kit/fixture-registry.ts";
import { readJsonLines } from "../../kit/rows.ts";

setDefaultTimeout(60_000);

const registry = fixtureRegistry();
const TABLE = `CREATE TABLE t (i BIGINT, k BIGINT) WITH (connector = 'single_file', path = '/x', format = 'json');`;

function planError(sql: string, limits = DEFAULT_SQL_LIMITS) {
  try {
    planSql(sql, registry, {}, limits);
  } catch (err) {
    if (!(err instanceof SqlError)) throw err;
    return { message: err.message, ...err.position(sql)! };
  }
  throw new Error("expected a SQL error");
}

describe("long expressions", () => {
  test("4,000 flat + 1 terms run through `runnel run` and give the right sums", async () => {
    const dir = tempDir("runnel-limits-");
    const input = join(dir, "in.jsonl");
    writeFileSync(input, [1, 2, 3].map((i) => JSON.stringify({ i })).join("\n") + "\n");
    const out = join(dir, "out.jsonl");
    const sql = `CREATE TABLE src (i BIGINT) WITH (connector = 'single_file', path = '${input}', format = 'json', type = 'source');
CREATE TABLE dst WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO dst SELECT i${" + 1".repeat(4000)} AS s FROM src WHERE i${" + 1".repeat(4000)} > 4002;`;
    const res = await runCli(["run", writeSql(dir, sql), "--quiet"]);
    expect(res.code === 0 ? "" : res.stderr.slice(0, 500)).toBe("");
    expect(readJsonLines(out)).toEqual([{ s: 4003 }]);
  });

  test("a long expression over an aggregate plans (each subexpression is matched against GROUP BY once)", () => {
    const p = planSql(`${TABLE}\nSELECT k, sum(i)${" + k".repeat(4000)} AS s FROM t GROUP BY k;`, registry);
    const map = p.sinks[0]!.input;
    if (map.kind !== "map") throw new Error("expected a map");
    // keys, aggregate: k = 2, sum = 10 → 10 + 4000 × 2
    expect(compileMap(map.exprs)({ rows: [[2, 10]], times: [0] }).rows).toEqual([[2, 8010]]);
  });

  test("long CASE, IN, AND and COALESCE lists compile flat and evaluate like short ones", () => {
    const whens = Array.from({ length: 3000 }, (_, n) => `WHEN i = ${n} THEN ${n * 2}`).join(" ");
    const ins = Array.from({ length: 3000 }, (_, n) => `k + ${n}`).join(", ");
    const ands = Array.from({ length: 2000 }, (_, n) => `i <> ${n + 5000}`).join(" AND ");
    const p = planSql(`${TABLE}\nSELECT CASE ${whens} END AS c, i IN (${ins}) AS member, ${ands} AS every, coalesce(${"NULL, ".repeat(2000)} i) AS first FROM t;`, registry);
    const map = p.sinks[0]!.input as Extract<typeof p.sinks[0]["input"], { kind: "map" }>;
    expect(compileMap(map.exprs)({ rows: [[2999, 1]], times: [0] }).rows).toEqual([[5998, true, true, 2999]]);
    expect(compileMap(map.exprs)({ rows: [[5001, 1]], times: [0] }).rows).toEqual([[null, false, false, 5001]]);
    expect(compileMap(map.exprs)({ rows: [[null, 1]], times: [0] }).rows).toEqual([[null, null, null, null]]);
  });
});

describe("limits", () => {
  test("10,000 nested parentheses are refused at the first level past the limit, naming it", () => {
    const sql = `${TABLE}\nSELECT ${"(".repeat(10_000)}i${")".repeat(10_000)} AS s FROM t;`;
    const err = planError(sql);
    expect(err.message).toContain(`more than ${DEFAULT_SQL_LIMITS.maxExpressionDepth} levels`);
    expect(err.message).toContain("RUNNEL_SQL_MAX_DEPTH");
    expect(err.line).toBe(2);
    expect(err.column).toBe(8 + DEFAULT_SQL_LIMITS.maxExpressionDepth);
  });

  test("nested CASE counts as nesting", () => {
    const sql = `${TABLE}\nSELECT ${"CASE WHEN i > 0 THEN ".repeat(300)}1${" END".repeat(300)} AS s FROM t;`;
    expect(planError(sql).message).toContain("levels deep");
  });

  test("a chain of more operators than the limit is refused where it passes the limit, naming it", () => {
    const err = planError(`${TABLE}\nSELECT i${" + 1".repeat(20_000)} AS s FROM t;`);
    expect(err.message).toContain(`more than ${DEFAULT_SQL_LIMITS.maxExpressionTerms} operators`);
    expect(err.message).toContain("RUNNEL_SQL_MAX_TERMS");
    expect(err.line).toBe(2);
    expect(err.column).toBe(10 + 4 * DEFAULT_SQL_LIMITS.maxExpressionTerms); // the first + past the limit
    // Parentheses do not hide a chain from the count.
    expect(planError(`${TABLE}\nSELECT ${"(i + 1) + ".repeat(3000)} 1 AS s FROM t;`).message).toContain("operators in one chain");
  });

  test("a statement longer than the token limit is refused, naming it", () => {
    const items = Array.from({ length: 30_000 }, (_, n) => `i AS c${n}`).join(", ");
    const err = planError(`${TABLE}\nSELECT ${items} FROM t;`);
    expect(err.message).toContain("more than the limit (maxStatementTokens = 50000, RUNNEL_SQL_MAX_TOKENS)");
    expect(err.line).toBe(2);
  });

  test("limits are configurable per call and through the environment", async () => {
    const nested = `${TABLE}\nSELECT ((((i)))) AS s FROM t;`;
    expect(() => planSql(nested, registry, {}, { ...DEFAULT_SQL_LIMITS })).not.toThrow();
    expect(planError(nested, { ...DEFAULT_SQL_LIMITS, maxExpressionDepth: 3 }).message).toContain("more than 3 levels");
    expect(planError(`${TABLE}\nSELECT i + 1 + 1 AS s FROM t;`, { ...DEFAULT_SQL_LIMITS, maxExpressionTerms: 1 }).message).toContain("more than 1 operators");
    expect(planError(`${TABLE}\nSELECT i + 1 + 1 AS s FROM t;`, { ...DEFAULT_SQL_LIMITS, maxStatementTokens: 8 }).message).toContain("maxStatementTokens = 8");

    const dir = tempDir("runnel-limits-");
    const file = writeSql(dir, nested);
    const proc = Bun.spawn(["bun", join(import.meta.dir, "../../../core/cli/main.ts"), "validate", file], {
      env: { ...process.env, RUNNEL_SQL_MAX_DEPTH: "3" },
      stderr: "pipe",
      stdout: "pipe",
    });
    const stderr = await new Response(proc.stderr).text();
    expect(await proc.exited).toBe(2);
    expect(stderr).toContain("error at line 2, column 11: expression nested more than 3 levels deep (maxExpressionDepth = 3, RUNNEL_SQL_MAX_DEPTH)");
  });
});
