/**
 * The SQL front end: `planSql` turns a script of CREATE TABLE / CREATE VIEW /
 * INSERT / SELECT statements into a logical pipeline, or throws a SqlError that
 * names the line, column and what to change.
 */
import type { LogicalPipeline } from "../plan/logical.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { SqlError } from "./errors.ts";
import { LexError } from "./lexer.ts";
import { checkSqlLimits, sqlLimitsFromEnv, type SqlLimits } from "./limits.ts";
import { planSqlText } from "./planner.ts";
import type { PlanContext } from "./tables.ts";

export { SqlError, formatSqlError } from "./errors.ts";
export type { PlanContext } from "./tables.ts";
export { DEFAULT_SQL_LIMITS, SQL_LIMIT_VARIABLES, type SqlLimits } from "./limits.ts";

/**
 * `limits` bound query size (default: DEFAULT_SQL_LIMITS with RUNNEL_SQL_MAX_DEPTH
 * and RUNNEL_SQL_MAX_TOKENS from the process environment applied).
 */
export function planSql(sql: string, registry: PluginRegistry, context: PlanContext = {}, limits?: SqlLimits): LogicalPipeline {
  try {
    checkSqlLimits(sql, limits ?? sqlLimitsFromEnv(process.env));
    return planSqlText(sql, registry, context);
  } catch (err) {
    if (err instanceof LexError) throw new SqlError(err.message, err.offset);
    // A safety net under the limits: deep recursion anywhere in planning is the query's size, not a crash.
    if (err instanceof RangeError && /call stack/i.test(err.message)) {
      throw new SqlError("the query is too deeply nested or too long to plan; split it over views or CTEs", null);
    }
    throw err;
  }
}
