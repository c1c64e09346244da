/**
 * Evaluates SQL expressions through the real planner and expression compiler,
 * without running a job: `evalSql("upper(s)", row)` plans `SELECT upper(s) FROM t`
 * over the fixture table below and runs the compiled projection on one row.
 */
import { compileMap } from "../../core/expr/index.ts";
import type { Row } from "../../core/plugin-api/index.ts";
import { planSql, SqlError } from "../../core/sql/index.ts";
import { fixtureRegistry } from "./fixture-registry.ts";

const registry = fixtureRegistry();

/** The columns every expression may use. */
export const EXPR_TABLE = `CREATE TABLE t (i BIGINT, f DOUBLE, s TEXT, b BOOLEAN, ts TIMESTAMP, j JSON, n BIGINT)
WITH (connector = 'single_file', path = '/x', format = 'json');`;
export const T0 = Date.UTC(2024, 2, 15, 13, 45, 30, 250) * 1000; // 2024-03-15T13:45:30.250Z
export const EXPR_ROW: Row = [7, 2.5, "Hello", true, T0, '{"a": {"b": [10, 20]}, "name": "x"}', null];

/** The row a projection (and optional filter) gives for `row`, or null when the filter drops it. */
export function evalRow(select: string, row: Row = EXPR_ROW, where?: string): unknown[] | null {
  const p = planSql(`${EXPR_TABLE}\nSELECT ${select} FROM t${where ? ` WHERE ${where}` : ""};`, registry);
  const node = p.sinks[0]!.input;
  if (node.kind !== "map") throw new Error(`expected a map, planned ${node.kind}`);
  const out = compileMap(node.exprs, node.filter, 7)({ rows: [row], times: [T0] });
  return out.rows.length ? out.rows[0]! : null;
}

/** The value of one expression. */
export const evalSql = (expr: string, row?: Row): unknown => evalRow(expr, row)![0];

/** The planning error an expression gives: message and 1-based position in the SELECT's line. */
export function exprError(expr: string): { message: string; line: number; column: number } {
  const sql = `${EXPR_TABLE}\nSELECT ${expr} FROM t;`;
  try {
    planSql(sql, registry);
  } catch (err) {
    if (!(err instanceof SqlError)) throw err;
    const pos = err.position(sql);
    return { message: err.message, line: pos?.line ?? 0, column: pos?.column ?? 0 };
  }
  throw new Error(`expected a SQL error for ${expr}`);
}
