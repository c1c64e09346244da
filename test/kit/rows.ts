/** Rows as the oracle tests compare them: JSON lines read back, and an order-free normal form (DuckDB gives BIGINT as bigint). */
import { readFileSync } from "node:fs";

export function readJsonLines(file: string): Record<string, any>[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** Each row as key-sorted JSON with bigints as numbers, the list sorted: equal lists mean equal multisets. */
export const normalizeRows = (rows: Record<string, unknown>[]) =>
  rows
    .map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === "bigint" ? Number(v) : v])))
    .map((r) => JSON.stringify(r, Object.keys(r).sort()))
    .sort();
