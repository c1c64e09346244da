/**
 * The differential SQL tester: generates cases (projections of random scalar
 * expressions, filters, grouped aggregates) over a generated table, runs each
 * through Runnel (the real planner and a real Job in this process, reading the
 * rows from a small in-memory source and collecting a bare SELECT's rows) and
 * through DuckDB, and compares the results after normalising types.
 *
 * A disagreement is either explained by a documented difference
 * (differences.ts) or reported as a finding.
 */
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Job } from "../../../core/dataflow/job.ts";
import { defineConnector, definePlugin, RowOp, type Batch, type SinkWriter } from "../../../core/plugin-api/index.ts";
import { PluginRegistry } from "../../../core/registry/registry.ts";
import { planSql, SqlError } from "../../../core/sql/index.ts";
import { explain, type Outcome } from "./differences.ts";
import { COLUMNS, expr, generateRows, literal, prng, Rng, type FuzzType, type Gen, type Row } from "./generator.ts";

export interface FuzzOptions {
  seed: number;
  cases: number;
  /** Rows in the generated table. */
  rows?: number;
  /** Expression depth. */
  depth?: number;
  log?: (line: string) => void;
}

export interface Finding {
  kind: "projection" | "filter" | "aggregate";
  runnel: string;
  duck: string;
  detail: string;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  /** Cases where both engines agreed, value for value. */
  agreed: number;
  /** Disagreements explained by a documented difference, by difference. */
  explained: Record<string, number>;
  /** Cases Runnel refused at planning time (with the message), by message. */
  refused: Record<string, number>;
  findings: Finding[];
  /** Functions and operators exercised, with how many cases used each. */
  coverage: Record<string, number>;
}

// ---------------------------------------------------------------- Runnel side

let currentRows: Row[] = [];

const rowsConnector = defineConnector({
  name: "fuzz_rows",
  options: {},
  source: {
    create() {
      let done = false;
      return {
        splits: () => ["rows"],
        poll() {
          if (done) return { end: true };
          done = true;
          return { batches: [{ split: "rows", rows: currentRows.map((r) => [...r]), times: currentRows.map((_, i) => i) }] };
        },
        snapshot: () => ({}),
      };
    },
  },
});

export function fuzzRegistry(): PluginRegistry {
  const r = new PluginRegistry();
  r.register(definePlugin({ name: "sql-fuzz", connectors: [rowsConnector] }));
  return r;
}

const SQL_TYPES: Record<FuzzType, string> = { int: "BIGINT", float: "DOUBLE", text: "TEXT", bool: "BOOLEAN", ts: "TIMESTAMP" };
const TABLE = `CREATE TABLE t (${COLUMNS.map((c) => `${c.name} ${SQL_TYPES[c.type]}`).join(", ")}) WITH (connector = 'fuzz_rows');`;

type Result = { ok: true; rows: unknown[][] } | { ok: false; error: string; planning: boolean };

/** Runs a query through Runnel over `rows`; an updating result is folded into the rows it ends as. */
export async function runRunnel(registry: PluginRegistry, query: string, rows: Row[], stateRoot: string): Promise<Result> {
  let pipeline;
  try {
    pipeline = planSql(`${TABLE}\n${query};`, registry);
  } catch (err) {
    if (err instanceof SqlError) return { ok: false, error: err.message, planning: true };
    throw err;
  }
  currentRows = rows;
  // Append-only results are collected in order; updating ones are folded into the rows they end as.
  const appended: unknown[][] = [];
  const live = new Map<string, { row: unknown[]; n: number }>();
  const key = (r: unknown[]) => JSON.stringify(r, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v));
  const apply = (row: unknown[], delta: number) => {
    const k = key(row);
    const e = live.get(k) ?? { row, n: 0 };
    e.n += delta;
    if (e.n === 0) live.delete(k);
    else live.set(k, e);
  };
  const writer: SinkWriter = {
    write(batch: Batch) {
      if (!batch.ops) {
        appended.push(...batch.rows);
        return;
      }
      batch.rows.forEach((row, i) => {
        const op = batch.ops?.[i] ?? RowOp.Insert;
        if (op === RowOp.Insert) apply(row, 1);
        else if (op === RowOp.Delete) apply(row, -1);
        else {
          apply(batch.before![i]!, -1);
          apply(row, 1);
        }
      });
    },
  };
  const stateDir = mkdtempSync(join(stateRoot, "job-"));
  const job = new Job(pipeline, registry, { parallelism: 1, stateDir, checkpointIntervalMs: 0, preview: () => writer, log: { info() {}, warn() {} } });
  try {
    await job.run();
  } catch (err) {
    return { ok: false, error: (err as Error).message, planning: false };
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
  return { ok: true, rows: [...appended, ...[...live.values()].flatMap((e) => Array.from({ length: e.n }, () => e.row))] };
}

// ---------------------------------------------------------------- DuckDB side

async function runDuck(conn: DuckDBConnection, query: string): Promise<Result> {
  try {
    const reader = await conn.runAndReadAll(query);
    return { ok: true, rows: reader.getRowsJS() as unknown[][] };
  } catch (err) {
    return { ok: false, error: (err as Error).message.split("\n")[0]!, planning: false };
  }
}

/** DuckDB gives TIMESTAMP as µs through epoch_us, so both sides compare numbers. */
const duckOut = (g: Gen) => (g.type === "ts" ? `epoch_us(${g.duck})` : g.duck);

// ---------------------------------------------------------------- comparison

function normalise(v: unknown): unknown {
  if (typeof v === "bigint") return Number(v);
  if (v instanceof Date) return v.getTime() * 1000;
  return v ?? null;
}

function sameValue(a: unknown, b: unknown): boolean {
  // Integers from DuckDB come as bigint: compare them exactly, so a rounded sum is not taken for the right one.
  if (typeof b === "bigint" && typeof a === "number") return Number.isInteger(a) && BigInt(a) === b;
  a = normalise(a);
  b = normalise(b);
  if (a === b) return true;
  if (typeof a === "number" && typeof b === "number") {
    if (Number.isNaN(a) && Number.isNaN(b)) return true;
    if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
    return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  return false;
}

const show = (v: unknown) => JSON.stringify(normalise(v), (_, x) => (typeof x === "number" && !Number.isFinite(x) ? String(x) : typeof x === "bigint" ? Number(x) : x));

/** Compares row lists in order (projections keep the input's order), or as multisets when `sorted`. */
function compareRows(ours: unknown[][], theirs: unknown[][], sorted: boolean): string | null {
  if (sorted) {
    const order = (rows: unknown[][]) => rows.map((r) => r.map(normalise)).sort((x, y) => (show(x) < show(y) ? -1 : show(x) > show(y) ? 1 : 0));
    ours = order(ours);
    theirs = order(theirs);
  }
  if (ours.length !== theirs.length) return `${ours.length} rows from Runnel, ${theirs.length} from DuckDB`;
  for (let r = 0; r < ours.length; r++) {
    for (let c = 0; c < ours[r]!.length; c++) {
      if (!sameValue(ours[r]![c], theirs[r]![c])) return `row ${r}, column ${c + 1}: Runnel ${show(ours[r]![c])}, DuckDB ${show(theirs[r]![c])}`;
    }
  }
  return null;
}

// ---------------------------------------------------------------- cases

interface Case {
  kind: Finding["kind"];
  runnel: string;
  duck: string;
  /** Compare as multisets (grouped results have no order). */
  sorted: boolean;
  uses: string[];
}

function projectionCase(g: Gen): Case {
  return { kind: "projection", runnel: `SELECT id, ${g.sql} AS v FROM t`, duck: `SELECT id, ${duckOut(g)} AS v FROM t`, sorted: true, uses: g.uses };
}

function filterCase(rng: Rng, depth: number): Case {
  const p = expr(rng, "bool", depth);
  return { kind: "filter", runnel: `SELECT id FROM t WHERE ${p.sql}`, duck: `SELECT id FROM t WHERE ${p.duck}`, sorted: true, uses: ["WHERE", ...p.uses] };
}

function aggregateCase(rng: Rng, depth: number): Case {
  const n = expr(rng, rng.pick<FuzzType>(["int", "float"]), depth - 1);
  const m = expr(rng, rng.pick<FuzzType>(["int", "text", "ts", "float"]), depth - 1);
  const mOut = (x: string) => (m.type === "ts" ? `epoch_us(${x})` : x);
  // Half over a tumbling window (append-only, all rows in one window), half without (an updating result, folded).
  const windowed = rng.chance(0.5);
  const runnel = windowed
    ? `SELECT k, c, cn, total, mean, lo, hi FROM (SELECT tumble(INTERVAL '1' HOUR) AS window, k, count(*) AS c, count(${n.sql}) AS cn, sum(${n.sql}) AS total, avg(${n.sql}) AS mean, min(${m.sql}) AS lo, max(${m.sql}) AS hi FROM t GROUP BY window, k)`
    : `SELECT k, count(*) AS c, count(${n.sql}) AS cn, sum(${n.sql}) AS total, avg(${n.sql}) AS mean, min(${m.sql}) AS lo, max(${m.sql}) AS hi FROM t GROUP BY k`;
  const duck =
    `SELECT k, count(*), count(${n.duck}), sum(${n.duck}), avg(${n.duck}), ${mOut(`min(${m.duck})`)}, ${mOut(`max(${m.duck})`)} FROM t GROUP BY k`;
  return { kind: "aggregate", runnel, duck, sorted: true, uses: [windowed ? "GROUP BY tumble" : "GROUP BY", "count", "sum", "avg", "min", "max", ...n.uses, ...m.uses] };
}

async function evaluate(c: Case, registry: PluginRegistry, conn: DuckDBConnection, rows: Row[], stateRoot: string): Promise<{ outcome: Outcome; ours: Result; theirs: Result }> {
  const [ours, theirs] = [await runRunnel(registry, c.runnel, rows, stateRoot), await runDuck(conn, c.duck)];
  if (ours.ok && theirs.ok) {
    const diff = compareRows(ours.rows, theirs.rows, c.sorted);
    return { outcome: diff === null ? { agree: true } : { agree: false, detail: diff }, ours, theirs };
  }
  // Both refuse the input (Runnel possibly already when planning a constant): agreement.
  if (!ours.ok && !theirs.ok) return { outcome: { agree: true }, ours, theirs };
  const detail = !ours.ok
    ? `Runnel ${ours.planning ? "refused" : "failed"}: ${ours.error}; DuckDB ${theirs.ok ? "gave " + show(theirs.rows.slice(0, 4)) : "failed: " + theirs.error}`
    : `Runnel gave ${show(ours.rows.slice(0, 4))}; DuckDB failed: ${(theirs as { error: string }).error}`;
  return { outcome: { agree: false, detail }, ours, theirs };
}

/** Runs `cases` generated cases from `seed` and reports agreements, explained differences and findings. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const rng = new Rng(prng(options.seed));
  const depth = options.depth ?? 3;
  const rows = generateRows(rng, options.rows ?? 16);
  const registry = fuzzRegistry();
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  const stateRoot = mkdtempSync(join(tmpdir(), "runnel-fuzz-"));
  const report: FuzzReport = { seed: options.seed, cases: 0, agreed: 0, explained: {}, refused: {}, findings: [], coverage: {} };
  try {
    const types: Record<FuzzType, string> = { int: "BIGINT", float: "DOUBLE", text: "VARCHAR", bool: "BOOLEAN", ts: "TIMESTAMP" };
    await conn.run(`CREATE TABLE t (${COLUMNS.map((c) => `${c.name} ${types[c.type]}`).join(", ")})`);
    const values = rows.map((r) => `(${r.map((v, i) => literal(COLUMNS[i]!.type, v).duck).join(", ")})`);
    await conn.run(`INSERT INTO t VALUES ${values.join(", ")}`);
    for (let n = 0; n < options.cases; n++) {
      const roll = rng.next();
      const c =
        roll < 0.7 ? projectionCase(expr(rng, rng.pick<FuzzType>(["int", "float", "text", "bool", "ts"]), depth))
        : roll < 0.85 ? filterCase(rng, depth)
        : aggregateCase(rng, depth);
      const { outcome, ours, theirs } = await evaluate(c, registry, conn, rows, stateRoot);
      report.cases++;
      for (const u of new Set(c.uses)) report.coverage[u] = (report.coverage[u] ?? 0) + 1;
      if (outcome.agree) {
        report.agreed++;
        continue;
      }
      const why = explain(c.runnel, ours, theirs, rows);
      if (!why && !ours.ok && ours.planning) {
        report.refused[ours.error] = (report.refused[ours.error] ?? 0) + 1;
        report.findings.push({ kind: c.kind, runnel: c.runnel, duck: c.duck, detail: outcome.detail });
        options.log?.(`finding ${report.findings.length} (refused): ${c.runnel}\n  ${outcome.detail}`);
        continue;
      }
      if (why) {
        report.explained[why] = (report.explained[why] ?? 0) + 1;
        continue;
      }
      report.findings.push({ kind: c.kind, runnel: c.runnel, duck: c.duck, detail: outcome.detail });
      options.log?.(`finding ${report.findings.length}: ${c.runnel}\n  ${outcome.detail}`);
    }
  } finally {
    conn.closeSync();
    instance.closeSync();
    rmSync(stateRoot, { recursive: true, force: true });
  }
  return report;
}
