/** Rows as the oracle tests compare them: JSON lines read back, and an order-free normal form (DuckDB gives BIGINT as bigint). */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

export function readJsonLines(file: string): Record<string, any>[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** Each sink's `<name>.jsonl` under `dir` in normal form (no file yet: no rows), those in `updating` folded from their changes first. */
export function sinkOutputs(dir: string, sinks: readonly string[], updating: readonly string[] = []): Record<string, string[]> {
  return Object.fromEntries(
    sinks.map((name) => {
      const file = join(dir, `${name}.jsonl`);
      const rows = existsSync(file) ? readJsonLines(file) : [];
      return [name, normalizeRows(updating.includes(name) ? foldChanges(rows as Parameters<typeof foldChanges>[0]) : rows)];
    }),
  );
}

/** Each row as key-sorted JSON with bigints as numbers, the list sorted: equal lists mean equal multisets. */
export const normalizeRows = (rows: Record<string, unknown>[]) =>
  rows
    .map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === "bigint" ? Number(v) : v])))
    .map((r) => JSON.stringify(r, Object.keys(r).sort()))
    .sort();

/**
 * The table an updating result ends as: Debezium-style changes ({before, after, op})
 * applied in order to a multiset of rows. A retraction of a row that is not there
 * throws, since that is a wrong answer in itself.
 */
export function foldChanges(changes: { before: Record<string, unknown> | null; after: Record<string, unknown> | null; op: string }[]): Record<string, unknown>[] {
  const rows = new Map<string, { row: Record<string, unknown>; n: number }>();
  const key = (r: Record<string, unknown>) => JSON.stringify(r, Object.keys(r).sort());
  const add = (r: Record<string, unknown>) => {
    const k = key(r);
    const e = rows.get(k);
    if (e) e.n++;
    else rows.set(k, { row: r, n: 1 });
  };
  const remove = (r: Record<string, unknown>) => {
    const k = key(r);
    const e = rows.get(k);
    if (!e) throw new Error(`retraction of a row that is not in the result: ${k}`);
    if (--e.n === 0) rows.delete(k);
  };
  for (const c of changes) {
    if (c.op === "c" || c.op === "r") add(c.after!);
    else if (c.op === "u") {
      remove(c.before!);
      add(c.after!);
    } else if (c.op === "d") remove(c.before!);
    else throw new Error(`unknown op ${c.op}`);
  }
  return [...rows.values()].flatMap((e) => Array.from({ length: e.n }, () => e.row));
}
