/**
 * The differential SQL tester at a fixed seed: every generated case agrees with
 * DuckDB or is explained by a documented difference (differences.ts, README
 * "SQL compatibility"). `bun run fuzz:sql --seed N --cases N` runs other seeds.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DIFFERENCES } from "./differences.ts";
import { COLUMNS, expr, generateRows, prng, Rng } from "./generator.ts";
import { fuzzRegistry, runFuzz, runRunnel } from "./runner.ts";

setDefaultTimeout(60_000);

describe("differential SQL testing against DuckDB", () => {
  test("300 cases at seed 20261130: no unexplained disagreement", async () => {
    const report = await runFuzz({ seed: 20261130, cases: 300 });
    const findings = report.findings.map((f) => `${f.runnel}\n  ${f.detail}`);
    expect(findings).toEqual([]);
    expect(report.cases).toBe(300);
    // Most cases agree outright; the rest are the documented differences, nothing else.
    expect(report.agreed).toBeGreaterThan(250);
    for (const why of Object.keys(report.explained)) expect(DIFFERENCES.map((d) => d.name)).toContain(why);
    expect(Object.keys(report.coverage).length).toBeGreaterThan(90);
  });

  test("the generator is deterministic: a seed gives the same cases", () => {
    const run = (seed: number) => {
      const rng = new Rng(prng(seed));
      return [JSON.stringify(generateRows(rng, 8)), ...Array.from({ length: 20 }, () => expr(rng, "text", 3).sql)];
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });
});

describe("aggregates on the values the tester found wrong", () => {
  const rows = (values: unknown[][]) => values.map((v, id) => COLUMNS.map((c) => (c.name === "id" ? id : c.name === "k" ? 0 : (v[["i", "f", "s"].indexOf(c.name)] ?? null))));
  const run = async (query: string, data: unknown[][]) => {
    const dir = mkdtempSync(join(tmpdir(), "runnel-fuzz-agg-"));
    try {
      return await runRunnel(fuzzRegistry(), query, rows(data), dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  test("min and max order NaN above every number and text by code point", async () => {
    const res = await run("SELECT k, min(f), max(f), min(s), max(s) FROM t GROUP BY k", [
      [1, 2.5, "\uFFFF"],
      [2, NaN, "😀"],
      [3, -1, "a"],
    ]);
    expect(res).toEqual({ ok: true, rows: [[0, -1, NaN, "a", "😀"]] });
  });

  test("an integer sum beyond 2^53 − 1 stops the job instead of rounding", async () => {
    const res = await run("SELECT k, sum(i) FROM t GROUP BY k", [[9007199254740991], [2], [-5]]);
    expect(res.ok).toBe(false);
    expect((res as { error: string }).error).toContain("integer overflow: sum() reached 9007199254740993");
  });
});
