/**
 * SQL semantics against DuckDB, in this process: tables of rows held in memory
 * (a `test_rows` connector reads them in small batches, so operators see many
 * batches and watermarks), a query planned and run as a real Job, its bare
 * SELECT collected (an updating result folded into the rows it ends as), and
 * the same rows loaded into DuckDB for the oracle's query.
 */
import { DuckDBInstance } from "@duckdb/node-api";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Job } from "../../core/dataflow/job.ts";
import { defineConnector, definePlugin, opt, RowOp, type Batch, type Field, type SinkWriter } from "../../core/plugin-api/index.ts";
import { createRegistry } from "../../core/registry/loader.ts";
import type { PluginRegistry } from "../../core/registry/registry.ts";
import { planSql, SqlError } from "../../core/sql/index.ts";

const datasets = new Map<string, { rows: unknown[][]; batch: number }>();

/** Rows of a dataset registered with `rowsTable`, read in batches of `batch` rows. */
const testRows = defineConnector({
  name: "test_rows",
  options: { dataset: opt.string({ required: true }) },
  source: {
    create(ctx) {
      const data = datasets.get((ctx.options as { dataset: string }).dataset);
      if (!data) throw new Error(`no dataset ${(ctx.options as { dataset: string }).dataset}`);
      let at = ctx.subtaskIndex === 0 ? 0 : data.rows.length;
      return {
        splits: () => (at < data.rows.length ? ["rows"] : []),
        poll() {
          if (at >= data.rows.length) return { end: true };
          const rows = data.rows.slice(at, at + data.batch).map((r) => [...r]);
          at += rows.length;
          return { batches: [{ split: "rows", rows }] };
        },
        snapshot: () => ({}),
      };
    },
  },
});

let shared: PluginRegistry | null = null;

/** The project's plugins plus `test_rows`. */
export async function testRegistry(): Promise<PluginRegistry> {
  if (shared) return shared;
  const r = await createRegistry();
  r.register(definePlugin({ name: "test-rows", connectors: [testRows] }));
  shared = r;
  return r;
}

export interface TableSpec {
  name: string;
  /** Column declarations as in CREATE TABLE, e.g. `k BIGINT, v DOUBLE, ts TIMESTAMP` (add `WATERMARK FOR ts` via `watermark`). */
  columns: { name: string; type: string }[];
  rows: unknown[][];
  /** The event-time column (a TIMESTAMP), with WATERMARK FOR it; a watermark expression may follow AS. */
  watermark?: string;
  /** Rows per batch (default 7). */
  batch?: number;
}

/** Bids as the window function tests read them: id, auction, bidder, price, ts (TIMESTAMP). */
export const BID_COLUMNS: TableSpec["columns"] = [
  { name: "id", type: "BIGINT" },
  { name: "auction", type: "BIGINT" },
  { name: "bidder", type: "BIGINT" },
  { name: "price", type: "BIGINT" },
  { name: "ts", type: "TIMESTAMP" },
];

let nextDataset = 0;

/** CREATE TABLE statements for Runnel reading `tables`. */
export function runnelTables(tables: TableSpec[]): string {
  return tables
    .map((t) => {
      const id = `ds${nextDataset++}`;
      datasets.set(id, { rows: t.rows, batch: t.batch ?? 7 });
      const cols = t.columns.map((c) => `${c.name} ${c.type}`).join(", ");
      const wm = t.watermark ? `, WATERMARK FOR ${t.watermark}` : "";
      return `CREATE TABLE ${t.name} (${cols}${wm}) WITH (connector = 'test_rows', dataset = '${id}', idle_micros = -1);`;
    })
    .join("\n");
}

export interface Result {
  fields: Field[];
  updating: boolean;
  /** Rows as they end (an updating result folded), as objects by column name. */
  rows: Record<string, unknown>[];
  /** Every change of an updating result, in order. */
  changes: { op: RowOp; row: unknown[]; before: unknown[] | null }[];
}

/** Plans `sql` (tables, then a bare SELECT) and runs it to the end of its bounded input. */
export async function runSql(sql: string, options: { registry?: PluginRegistry; parallelism?: number; onJob?: (job: Job) => void; combine?: boolean } = {}): Promise<Result> {
  const registry = options.registry ?? (await testRegistry());
  const pipeline = planSql(sql, registry);
  let fields: Field[] = [];
  let updating = false;
  const appended: unknown[][] = [];
  const changes: Result["changes"] = [];
  const live = new Map<string, { row: unknown[]; n: number }>();
  const key = (r: unknown[]) => JSON.stringify(r, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : typeof v === "bigint" ? String(v) : v));
  const apply = (row: unknown[], delta: number) => {
    const k = key(row);
    const e = live.get(k) ?? { row, n: 0 };
    e.n += delta;
    if (e.n < 0) throw new Error(`retraction of a row that is not in the result: ${k}`);
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
        const before = batch.before?.[i] ?? null;
        changes.push({ op, row, before });
        if (op === RowOp.Insert) apply(row, 1);
        else if (op === RowOp.Delete) apply(before ?? row, -1);
        else {
          apply(before!, -1);
          apply(row, 1);
        }
      });
    },
  };
  const stateDir = mkdtempSync(join(tmpdir(), "runnel-sql-test-"));
  const job = new Job(pipeline, registry, {
    parallelism: options.parallelism ?? 1,
    combine: options.combine,
    stateDir,
    checkpointIntervalMs: 0,
    preview: (f, u) => {
      fields = f;
      updating = u;
      return writer;
    },
    log: { info() {}, warn() {} },
  });
  options.onJob?.(job);
  try {
    await job.run();
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
  const rows = [...appended, ...[...live.values()].flatMap((e) => Array.from({ length: e.n }, () => e.row))];
  return { fields, updating, changes, rows: rows.map((r) => Object.fromEntries(fields.map((f, i) => [f.name, r[i]]))) };
}

const duckType: Record<string, string> = { TIMESTAMP: "BIGINT", TEXT: "VARCHAR" };

/** A column type in DuckDB's spelling: TIMESTAMP as µs BIGINT, MAP<K, V> as MAP(K, V). */
function duckColumnType(type: string): string {
  const map = /^MAP\s*<\s*(\w+)\s*,\s*(.+)>$/i.exec(type.trim());
  if (map) return `MAP(${duckColumnType(map[1]!)}, ${duckColumnType(map[2]!)})`;
  return duckType[type.toUpperCase()] ?? type;
}

/** DuckDB: `tables` loaded (TIMESTAMP columns as µs BIGINT), then `query`; rows as objects with numbers, not bigints. */
export async function duckSql(tables: TableSpec[], query: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  try {
    for (const t of tables) {
      await conn.run(`CREATE TABLE ${t.name} (${t.columns.map((c) => `${c.name} ${duckColumnType(c.type)}`).join(", ")})`);
      if (t.rows.length === 0) continue;
      const literal = (v: unknown): string =>
        v === null || v === undefined ? "NULL"
        : typeof v === "string" ? `'${v.replace(/'/g, "''")}'`
        : typeof v === "boolean" ? String(v).toUpperCase()
        : Array.isArray(v) ? `[${v.map(literal).join(", ")}]`
        : String(v);
      // A MAP column's value is Runnel's [key, value] pairs; DuckDB's literal is MAP {k: v}.
      const isMap = t.columns.map((c) => /^MAP\s*</i.test(c.type));
      const cell = (v: unknown, i: number): string =>
        isMap[i] && Array.isArray(v) ? `MAP {${(v as [unknown, unknown][]).map(([k, x]) => `${literal(k)}: ${literal(x)}`).join(", ")}}` : literal(v);
      for (let i = 0; i < t.rows.length; i += 500) {
        const values = t.rows.slice(i, i + 500).map((r) => `(${r.map(cell).join(", ")})`).join(", ");
        await conn.run(`INSERT INTO ${t.name} VALUES ${values}`);
      }
    }
    const reader = await conn.runAndReadAll(query);
    return (reader.getRowObjectsJS() as Record<string, unknown>[]).map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, normalize(v)])));
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

const isEntry = (e: unknown) => typeof e === "object" && e !== null && !Array.isArray(e) && Object.keys(e).length === 2 && "key" in e && "value" in e;

function normalize(v: unknown): unknown {
  if (typeof v === "bigint") return Number(v);
  // DuckDB gives a MAP as [{key, value}, ...]; Runnel holds [key, value] pairs.
  if (Array.isArray(v) && v.length > 0 && v.every(isEntry)) return v.map((e) => [normalize(e.key), normalize(e.value)]);
  if (Array.isArray(v)) return v.map(normalize);
  return v ?? null;
}

/** Compares two row lists as multisets: numbers within a relative `tolerance`, everything else exactly. */
export function sameRows(ours: Record<string, unknown>[], theirs: Record<string, unknown>[], tolerance = 1e-9): string | null {
  // Sorted by a form with numbers to 8 significant digits, so values within the tolerance sort alike.
  const show = (r: Record<string, unknown>) =>
    JSON.stringify(Object.keys(r).sort().map((k) => [k, normalize(r[k])]), (_, v) => (typeof v === "number" && !Number.isInteger(v) ? Number(v.toPrecision(8)) : v));
  const a = ours.map((r) => ({ r, s: show(r) })).sort((x, y) => (x.s < y.s ? -1 : x.s > y.s ? 1 : 0));
  const b = theirs.map((r) => ({ r, s: show(r) })).sort((x, y) => (x.s < y.s ? -1 : x.s > y.s ? 1 : 0));
  if (a.length !== b.length) return `${a.length} rows from Runnel, ${b.length} from DuckDB`;
  const close = (x: unknown, y: unknown): boolean => {
    x = normalize(x);
    y = normalize(y);
    if (typeof x === "number" && typeof y === "number") {
      if (Number.isNaN(x) && Number.isNaN(y)) return true;
      return x === y || Math.abs(x - y) <= tolerance * Math.max(1, Math.abs(x), Math.abs(y));
    }
    if (Array.isArray(x) && Array.isArray(y)) return x.length === y.length && x.every((e, i) => close(e, y[i]));
    return JSON.stringify(x) === JSON.stringify(y);
  };
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!.r;
    const y = b[i]!.r;
    for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) {
      if (!close(x[k], y[k])) return `row ${i} column ${k}: Runnel ${JSON.stringify(normalize(x[k]))}, DuckDB ${JSON.stringify(normalize(y[k]))}\n  Runnel ${a[i]!.s}\n  DuckDB ${b[i]!.s}`;
    }
  }
  return null;
}

/** A deterministic PRNG so failures reproduce. */
export function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The SqlError planning `sql` raises (failing the test when it plans), with the text at its position. */
export async function planError(sql: string): Promise<{ message: string; line: number; column: number; at: string }> {
  try {
    planSql(sql, await testRegistry());
  } catch (err) {
    if (!(err instanceof SqlError)) throw err;
    const pos = err.position(sql) ?? { line: 0, column: 0 };
    return { message: err.message, ...pos, at: (sql.split("\n")[pos.line - 1] ?? "").slice(pos.column - 1) };
  }
  throw new Error(`expected a SQL error planning:\n${sql}`);
}
