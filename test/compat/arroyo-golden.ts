#!/usr/bin/env bun
/**
 * Measures how much of Arroyo's SQL Runnel accepts, on Arroyo's own test
 * corpus: `bun test/compat/arroyo-golden.ts <path to an Arroyo checkout>`.
 *
 * - crates/arroyo-sql-testing: golden tests (a query, input files, the output
 *   Arroyo produces). Each query is planned; those that plan are run with
 *   `runnel run` and their output compared with the golden file the way
 *   Arroyo's smoke tests compare (updating outputs folded by key, others as
 *   multisets), treating 1 and 1.0 and timestamp spellings as equal.
 * - crates/arroyo-planner/src/test/queries: planner tests; planned only.
 *
 * The corpus is Arroyo's (Apache-2.0) and is read from the checkout, not kept
 * here. The README's compatibility table quotes a run of this script.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createRegistry } from "../../core/registry/loader.ts";
import { planSql, SqlError } from "../../core/sql/index.ts";
import { REPO, runCli, tempDir, writeSql } from "../kit/cli.ts";

const root = process.argv[2];
if (!root || !existsSync(join(root, "crates"))) {
  console.error("usage: bun test/compat/arroyo-golden.ts <path to an Arroyo checkout>");
  process.exit(2);
}
const registry = await createRegistry(REPO);
const testing = join(root, "crates/arroyo-sql-testing");

type Verdict = { name: string; result: "same output" | "different output" | "refused" | "failed" | "expected to fail" | "planned"; detail?: string };

function refusal(sql: string): string | null {
  try {
    planSql(sql, registry, { env: {} });
    return null;
  } catch (err) {
    if (!(err instanceof SqlError)) return `crash: ${(err as Error).message}`;
    const pos = err.position(sql);
    return `${err.message}${pos ? ` (line ${pos.line})` : ""}`;
  }
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;

/** A JSON value in a comparable form: object keys sorted, timestamps as µs, numbers as numbers (1 = 1.0). */
function canonical(v: unknown): unknown {
  if (typeof v === "string" && TIMESTAMP.test(v)) {
    const ms = Date.parse(/Z|[+-]\d{2}:?\d{2}$/.test(v) ? v : `${v.replace(" ", "T")}Z`);
    if (!Number.isNaN(ms)) return `ts:${ms}`;
  }
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as any)[k])]));
  return v;
}

const key = (v: unknown) => JSON.stringify(canonical(v));

function fold(lines: any[], pks: string[] | null): string[] {
  const state = new Map<string, unknown>();
  const rowKey = (r: any) => (pks ? JSON.stringify(pks.map((k) => canonical(r[k]))) : key(r));
  for (const l of lines) {
    if (l.op === "c") state.set(rowKey(l.after), l.after);
    else if (l.op === "u") {
      state.delete(rowKey(l.before));
      state.set(rowKey(l.after), l.after);
    } else if (l.op === "d") state.delete(rowKey(l.before));
  }
  return [...state.values()].map(key).sort();
}

async function golden(file: string): Promise<Verdict> {
  const name = file.replace(/\.sql$/, "");
  const raw = readFileSync(join(testing, "src/test/queries", file), "utf8");
  const dir = tempDir("runnel-arroyo-");
  const out = join(dir, "out.json");
  const sql = raw.replaceAll("$input_dir", join(testing, "inputs")).replaceAll("$output_path", out);
  const expectFail = raw.startsWith("--fail");
  const pks = raw.startsWith("--pk=") ? raw.split("\n")[0]!.split("=")[1]!.trim().split(",") : null;
  const refused = refusal(sql);
  if (refused) return { name, result: expectFail ? "expected to fail" : "refused", detail: refused };
  const inputs = [...sql.matchAll(/path = '([^']+)'/g)].map((m) => m[1]!).filter((p) => p !== out);
  if (inputs.some((p) => !existsSync(p))) return { name, result: "planned", detail: "input file missing from this checkout" };
  const res = await runCli(["run", writeSql(dir, sql), "--quiet"], { timeoutMs: 120_000 });
  if (res.code !== 0) return { name, result: expectFail ? "expected to fail" : "failed", detail: res.stderr.trim().split("\n").pop() };
  if (expectFail) return { name, result: "different output", detail: "Arroyo fails this query; Runnel ran it" };
  const goldenFile = join(testing, "golden_outputs", `${name}.json`);
  if (!existsSync(goldenFile)) return { name, result: "planned", detail: "no golden output" };
  const read = (f: string) => (existsSync(f) ? readFileSync(f, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)) : []);
  const ours = read(out);
  const theirs = read(goldenFile);
  const updating = theirs.some((l) => typeof l.op === "string");
  const a = updating ? fold(ours, pks) : ours.map(key).sort();
  const b = updating ? fold(theirs, pks) : theirs.map(key).sort();
  if (JSON.stringify(a) === JSON.stringify(b)) return { name, result: "same output" };
  const firstDiff = a.findIndex((x, i) => x !== b[i]);
  return { name, result: "different output", detail: `${a.length} vs ${b.length} rows; first difference: ${a[firstDiff] ?? "(none)"} vs ${b[firstDiff] ?? "(none)"}` };
}

const verdicts: Verdict[] = [];
for (const file of readdirSync(join(testing, "src/test/queries")).filter((f) => f.endsWith(".sql")).sort()) {
  const v = await golden(file);
  verdicts.push(v);
  console.log(`${v.result.padEnd(17)} ${v.name}${v.detail ? `: ${v.detail.slice(0, 300)}` : ""}`);
}

console.log("\nplanner tests (planned only):");
const plannerDir = join(root, "crates/arroyo-planner/src/test/queries");
const planner: Verdict[] = [];
for (const file of readdirSync(plannerDir).filter((f) => f.endsWith(".sql")).sort()) {
  const raw = readFileSync(join(plannerDir, file), "utf8");
  const expectFail = /^--fail|^-- fail|error_/.test(raw) || file.startsWith("error_");
  const refused = refusal(raw);
  const v: Verdict = { name: file.replace(/\.sql$/, ""), result: refused ? (expectFail ? "expected to fail" : "refused") : expectFail ? "different output" : "planned", detail: refused ?? (expectFail ? "Arroyo refuses this query; Runnel planned it" : undefined) };
  planner.push(v);
  console.log(`${v.result.padEnd(17)} ${v.name}${v.detail ? `: ${v.detail.slice(0, 300)}` : ""}`);
}

const count = (vs: Verdict[]) => {
  const c: Record<string, number> = {};
  for (const v of vs) c[v.result] = (c[v.result] ?? 0) + 1;
  return c;
};
console.log("\ngolden tests:", JSON.stringify(count(verdicts)));
console.log("planner tests:", JSON.stringify(count(planner)));
