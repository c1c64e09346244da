/**
 * The SQL front end: `planSql` turns a script of CREATE TABLE / CREATE VIEW /
 * INSERT / SELECT statements into a logical pipeline, or throws a SqlError that
 * names the line, column and what to change.
 */
import type { LogicalPipeline } from "../plan/logical.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { SqlError } from "./errors.ts";
import { LexError } from "./lexer.ts";
import { planSqlText } from "./planner.ts";
import type { PlanContext } from "./tables.ts";

export { SqlError, formatSqlError } from "./errors.ts";
export type { PlanContext } from "./tables.ts";

export function planSql(sql: string, registry: PluginRegistry, context: PlanContext = {}): LogicalPipeline {
  try {
    return planSqlText(sql, registry, context);
  } catch (err) {
    if (err instanceof LexError) throw new SqlError(err.message, err.offset);
    throw err;
  }
}
