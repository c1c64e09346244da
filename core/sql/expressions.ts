/**
 * Resolves expressions of the typed syntax tree (ast.ts) against a scope of
 * columns into typed engine expressions, checking names, arity and types as it
 * goes. Errors point at the node that is wrong.
 */
import { t, typeName, type AsyncUdfOptions, type SqlType, type UdfDefinition } from "../plugin-api/index.ts";
import type { Expr } from "../expr/expr.ts";
import { accepts, argInfos, argKind, commonType, KIND_NAMES, maxArgs, minArgs, SCALAR_FUNCTIONS, UNSUPPORTED_FUNCTIONS, type ScalarFunction } from "../expr/functions.ts";
import { compileExpr } from "../expr/index.ts";
import { AGGREGATE_FUNCTIONS } from "../expr/aggregates.ts";
import { DATE_PARTS, datePartName } from "../expr/time.ts";
import { castValue, ExprError, MAX_EXACT_INT, NULL_TYPE, parseTimestamp, refusedCast } from "../expr/values.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { didYouMean, SqlError } from "./errors.ts";
import type * as A from "./ast.ts";
import { isNumeric } from "./types.ts";

export interface ScopeColumn {
  name: string;
  /** Table name or alias the column can be qualified with. */
  qualifier?: string;
  type: SqlType;
  nullable: boolean;
}

export interface Scope {
  columns: ScopeColumn[];
  /** How messages name the relation: "`bids`". */
  label: string;
}

export interface ExprContext {
  registry: PluginRegistry;
  /** The clause being resolved, for messages ("WHERE", "the SELECT list"). */
  clause: string;
  /** Intercepts nodes before normal resolution (aggregates and group keys after GROUP BY). */
  hook?: (ast: A.Expr) => Expr | undefined;
}

export const WINDOW_FUNCTIONS = new Set(["tumble", "hop", "session"]);

/** The aggregates the planner types itself; the others come from core/expr/aggregates.ts or UDAF plugins. */
export const BUILTIN_AGGREGATE_NAMES = new Set(["count", "sum", "avg", "min", "max"]);

/** Clauses whose expressions run in a projection, where the planner can call async UDFs ahead of them. */
const ASYNC_UDF_CLAUSES = new Set(["the SELECT list", "WHERE", "HAVING"]);

/** An async UDF's options with their defaults, or undefined for a plain UDF. */
export function asyncOptions(udf: UdfDefinition): Required<AsyncUdfOptions> | undefined {
  const declared = udf.async ?? (udf.fn.constructor?.name === "AsyncFunction" ? true : undefined);
  if (!declared) return undefined;
  const o = declared === true ? {} : declared;
  const allowedInFlight = o.allowedInFlight ?? 100;
  const timeoutMs = o.timeoutMs ?? 5000;
  if (!Number.isInteger(allowedInFlight) || allowedInFlight < 1) throw new Error(`UDF ${udf.name}: async.allowedInFlight must be a whole number ≥ 1`);
  if (!(timeoutMs > 0)) throw new Error(`UDF ${udf.name}: async.timeoutMs must be a positive number of milliseconds`);
  return { ordered: o.ordered ?? true, allowedInFlight, timeoutMs };
}

function matches(candidates: number[], columns: ScopeColumn[], name: string, exact: boolean): number[] {
  return candidates.filter((i) => (exact ? columns[i]!.name === name : columns[i]!.name.toLowerCase() === name.toLowerCase()));
}

/** Indices of the columns `name` (optionally qualified) refers to: exact case first, then case-insensitive. */
export function findColumns(scope: Scope, name: string, qualifier?: string): number[] {
  let candidates = scope.columns.map((_, i) => i);
  if (qualifier !== undefined) {
    candidates = candidates.filter((i) => scope.columns[i]!.qualifier?.toLowerCase() === qualifier.toLowerCase());
  }
  const exact = matches(candidates, scope.columns, name, true);
  return exact.length > 0 ? exact : matches(candidates, scope.columns, name, false);
}

function fieldOf(base: Expr, name: string, offset: number | null): Expr {
  if (base.type.kind !== "struct") {
    throw new SqlError(`cannot read field \`${name}\`: the value is ${typeName(base.type)}, not a struct`, offset);
  }
  const fields = base.type.fields;
  const f = fields.find((x) => x.name === name) ?? fields.find((x) => x.name.toLowerCase() === name.toLowerCase());
  if (!f) {
    throw new SqlError(
      `struct has no field \`${name}\`${didYouMean(name, fields.map((x) => x.name))} (fields: ${fields.map((x) => x.name).join(", ")})`,
      offset,
    );
  }
  return { kind: "field", expr: base, name: f.name, type: f.type };
}

function columnExpr(scope: Scope, index: number): Expr {
  const c = scope.columns[index]!;
  return { kind: "column", index, name: c.name, type: c.type };
}

function resolveColumnRef(ast: Extract<A.Expr, { kind: "column" }>, scope: Scope): Expr {
  const parts = ast.parts;
  const name = parts[parts.length - 1]!;
  const offset = ast.at;
  const unique = (hits: number[], label: string): Expr | undefined => {
    if (hits.length > 1) throw new SqlError(`column \`${label}\` is ambiguous; qualify it with a table name or alias`, offset);
    return hits.length === 1 ? columnExpr(scope, hits[0]!) : undefined;
  };
  if (parts.length === 1) {
    const hit = unique(findColumns(scope, name), name);
    if (hit) return hit;
  } else {
    // qualifier.column[.field] first, then column.field[.field]
    const qualified = unique(findColumns(scope, parts[1]!, parts[0]!), parts.slice(0, 2).join("."));
    if (qualified) return parts.slice(2).reduce((e, f, i) => fieldOf(e, f, ast.partAt[i + 2] ?? offset), qualified);
    const base = unique(findColumns(scope, parts[0]!), parts[0]!);
    if (base) return parts.slice(1).reduce((e, f, i) => fieldOf(e, f, ast.partAt[i + 1] ?? offset), base);
    if (scope.columns.some((c) => c.qualifier?.toLowerCase() === parts[0]!.toLowerCase())) {
      const inTable = scope.columns.filter((c) => c.qualifier?.toLowerCase() === parts[0]!.toLowerCase()).map((c) => c.name);
      throw new SqlError(`unknown column \`${parts[1]}\` in \`${parts[0]}\`${didYouMean(parts[1]!, inTable)}`, ast.partAt[1] ?? offset);
    }
  }
  const missing = parts.length === 1 ? name : parts[0]!;
  const names = [...new Set(scope.columns.map((c) => c.name))];
  throw new SqlError(`unknown column \`${missing}\` in ${scope.label}${didYouMean(missing, names)}`, offset);
}

const INTERVAL_UNITS: Record<string, number> = {
  microsecond: 1, microseconds: 1, us: 1,
  millisecond: 1e3, milliseconds: 1e3, ms: 1e3,
  second: 1e6, seconds: 1e6, sec: 1e6, secs: 1e6, s: 1e6,
  minute: 60e6, minutes: 60e6, min: 60e6, mins: 60e6, m: 60e6,
  hour: 3600e6, hours: 3600e6, h: 3600e6,
  day: 86400e6, days: 86400e6, d: 86400e6,
  week: 7 * 86400e6, weeks: 7 * 86400e6,
};

/** `INTERVAL '1' HOUR`, `INTERVAL '1 hour'`, `INTERVAL '1 hour 30 minutes'` → µs. */
export function intervalMicros(value: string, unit: string, offset: number | null): number {
  const text = unit ? `${value} ${unit}` : value;
  const parts = text.trim().toLowerCase().split(/\s+/);
  let total = 0;
  if (parts.length % 2 !== 0) throw new SqlError(`cannot read interval '${text}'; write it like INTERVAL '1 hour' or INTERVAL '10' SECOND`, offset);
  for (let i = 0; i < parts.length; i += 2) {
    const n = Number(parts[i]);
    const u = INTERVAL_UNITS[parts[i + 1]!];
    if (!Number.isFinite(n)) throw new SqlError(`cannot read '${parts[i]}' in interval '${text}'`, offset);
    if (u === undefined) {
      const extra = /^(month|year|mon)s?$/.test(parts[i + 1]!) ? " (months and years are not fixed lengths of time: write days, e.g. INTERVAL '30' DAY)" : "";
      throw new SqlError(`unknown interval unit '${parts[i + 1]}'${extra}; use microsecond, millisecond, second, minute, hour, day or week`, offset);
    }
    total += n * u;
  }
  return Math.round(total);
}

const lit = (value: unknown, type: SqlType): Expr => ({ kind: "literal", value, type });
const isNullLiteral = (e: Expr) => e.kind === "literal" && e.value === null;
const call = (name: string, args: Expr[], type: SqlType): Expr => ({ kind: "call", name, args, type });

/** Makes a string literal compared with a timestamp a timestamp literal (`ts > '2024-01-01'`). */
function coerceLiteral(e: Expr, to: SqlType, offset: number | null): Expr {
  if (e.kind === "literal" && typeof e.value === "string" && to.kind === "timestamp") {
    const v = parseTimestamp(e.value);
    if (v === null) throw new SqlError(`'${e.value}' is not a timestamp; write it like '2024-01-01T00:00:00Z'`, offset);
    return lit(v, t.timestamp());
  }
  if (isNullLiteral(e)) return lit(null, to);
  return e;
}

function comparable(a: SqlType, b: SqlType): boolean {
  const nested = (x: SqlType) => x.kind === "array" || x.kind === "struct" || x.kind === "map";
  if (nested(a) || nested(b)) return false;
  if (a.kind === b.kind) return true;
  if (isNumeric(a) && isNumeric(b)) return true;
  const textual = (x: SqlType) => x.kind === "string" || x.kind === "json";
  return textual(a) && textual(b);
}

/** `->` and json_get() give JSON text, where a string keeps its quotes. */
const isJsonGet = (e: Expr) => e.kind === "call" && e.name === "json_get";

/** Refuses comparing `->` / json_get() (JSON text) with TEXT, which would compare `"x"` (quoted) with `x`. */
function checkJsonComparison(a: Expr, b: Expr, offset: number | null): void {
  const [json, other] = isJsonGet(a) ? [a, b] : isJsonGet(b) ? [b, a] : [null, null];
  if (json && other && (other.type.kind === "string" || isNumeric(other.type) || other.type.kind === "boolean") && !isNullLiteral(other)) {
    throw new SqlError(
      "`->` and json_get() give JSON (a string keeps its quotes); compare text with `->>` or json_get_str(), " +
        "numbers with json_get_int() / json_get_float() or CAST(... AS BIGINT), e.g. value->>'event_type' = 'click'",
      offset,
    );
  }
}

function comparisonCheck(op: string, a: Expr, b: Expr, offset: number | null): void {
  checkJsonComparison(a, b, offset);
  if (!comparable(a.type, b.type) && !isNullLiteral(a) && !isNullLiteral(b)) {
    const structured = [a.type, b.type].some((x) => x.kind === "array" || x.kind === "struct" || x.kind === "map");
    throw new SqlError(
      structured
        ? `${op} cannot compare ${typeName(a.type)} with ${typeName(b.type)}: arrays, structs and maps are not comparable; compare their elements, fields or values`
        : `cannot compare ${typeName(a.type)} with ${typeName(b.type)}; cast one side`,
      offset,
    );
  }
}

/** DECIMAL(p, s) of a numeric type, for decimal arithmetic (integers count as DECIMAL(19, 0)). */
function asDecimal(x: SqlType): { precision: number; scale: number } | null {
  if (x.kind === "decimal") return x;
  if (x.kind === "int") return { precision: 19, scale: 0 };
  return null;
}

function arithmeticType(op: string, a: SqlType, b: SqlType, offset: number | null): SqlType {
  const k = (x: SqlType) => x.kind;
  if (k(a) === "timestamp" && k(b) === "interval" && (op === "+" || op === "-")) return t.timestamp();
  if (k(a) === "interval" && k(b) === "timestamp" && op === "+") return t.timestamp();
  if (k(a) === "timestamp" && k(b) === "timestamp" && op === "-") return t.interval();
  if (k(a) === "interval" && k(b) === "interval" && (op === "+" || op === "-")) return t.interval();
  if (k(a) === "interval" && isNumeric(b) && (op === "*" || op === "/")) return t.interval();
  if (isNumeric(a) && k(b) === "interval" && op === "*") return t.interval();
  if (isNumeric(a) && isNumeric(b)) {
    if (a.kind === "int" && b.kind === "int") {
      return { kind: "int", bits: a.bits === 64 || b.bits === 64 ? 64 : 32, ...(a.unsigned && b.unsigned ? { unsigned: true } : {}) };
    }
    // DECIMAL with DECIMAL or an integer stays exact to its scale for + - * (DataFusion's result types); the rest is DOUBLE.
    const da = asDecimal(a);
    const db = asDecimal(b);
    if (da && db && (a.kind === "decimal" || b.kind === "decimal") && op !== "/" && op !== "%") {
      const scale = op === "*" ? da.scale + db.scale : Math.max(da.scale, db.scale);
      const precision =
        op === "*" ? da.precision + db.precision + 1 : Math.max(da.precision - da.scale, db.precision - db.scale) + scale + 1;
      if (scale <= 15) return { kind: "decimal", precision: Math.min(38, precision), scale };
    }
    return t.double();
  }
  const hint = k(a) === "string" || k(b) === "string" ? "; to join text write a || b or concat(a, b)" : "; cast one side";
  throw new SqlError(`operator ${op} cannot combine ${typeName(a)} and ${typeName(b)}${hint}`, offset);
}

/** The common type of values that meet in one column (CASE branches, COALESCE), or an error naming the mismatch. */
function commonTypeOf(args: Expr[], what: string, offset: number | null): SqlType {
  try {
    // A bare NULL has no type of its own; CAST(NULL AS T) does.
    return commonType(args.filter((a) => !(isNullLiteral(a) && a.type === NULL_TYPE)).map((a) => a.type), what);
  } catch (err) {
    if (err instanceof ExprError) throw new SqlError(err.message, offset);
    throw err;
  }
}

/**
 * Resolutions without a hook, by node, scope and clause (async UDFs are allowed in some clauses only). After GROUP BY every
 * subexpression is tried against the grouping keys, which resolves each subtree
 * again at every level of the expression; remembering them keeps planning linear.
 */
const RESOLVED = new WeakMap<object, WeakMap<Scope, Map<string, Expr>>>();

export function resolveExpr(ast: A.Expr, scope: Scope, ctx: ExprContext): Expr {
  if (ctx.hook) return resolveUncached(ast, scope, ctx);
  let byScope = RESOLVED.get(ast);
  let byClause = byScope?.get(scope);
  const hit = byClause?.get(ctx.clause);
  if (hit) return hit;
  const e = resolveUncached(ast, scope, ctx);
  if (!byScope) RESOLVED.set(ast, (byScope = new WeakMap()));
  if (!byClause) byScope.set(scope, (byClause = new Map()));
  byClause.set(ctx.clause, e);
  return e;
}

/**
 * Evaluates a call of constants when planning, as DataFusion's simplifier does:
 * `nullif(1000, 1000) * CAST(f AS BIGINT)` is then NULL without evaluating the
 * cast, and a constant that cannot be computed is an error before the job runs.
 */
function fold(e: Expr, hint: number | null): Expr {
  if (e.kind !== "call" || e.args.length === 0 || !e.args.every((a) => a.kind === "literal")) return e;
  if (SCALAR_FUNCTIONS.get(e.name)?.volatile) return e;
  try {
    return lit(compileExpr(e)([], 0), e.type);
  } catch (err) {
    if (err instanceof ExprError) throw new SqlError(err.message, hint);
    throw err;
  }
}

function numberLiteral(raw: string, offset: number): Expr {
  if (/[.eE]/.test(raw)) return lit(Number(raw), t.double());
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) {
    throw new SqlError(`integer ${raw} is beyond ±${MAX_EXACT_INT} (2^53 − 1), the largest Runnel holds exactly; write it as ${raw}.0 for a DOUBLE`, offset);
  }
  return lit(n, t.bigint());
}

function resolveUncached(ast: A.Expr, scope: Scope, ctx: ExprContext): Expr {
  if (ctx.hook) {
    const hooked = ctx.hook(ast);
    if (hooked) return hooked;
  }
  return fold(resolveNode(ast, scope, ctx), ast.at);
}

function resolveNode(ast: A.Expr, scope: Scope, ctx: ExprContext): Expr {
  const sub = (x: A.Expr) => resolveExpr(x, scope, ctx);
  const hint = ast.at;
  switch (ast.kind) {
    case "column":
      return resolveColumnRef(ast, scope);
    case "star":
      throw new SqlError(`* is only allowed in the SELECT list or count(*)`, hint);
    case "number":
      return numberLiteral(ast.text, hint);
    case "string":
      return lit(ast.value, t.string());
    case "boolean":
      return lit(ast.value, t.boolean());
    case "null":
      return lit(null, NULL_TYPE);
    case "timestamp": {
      const v = parseTimestamp(ast.value);
      if (v === null) throw new SqlError(`TIMESTAMP '${ast.value}' is not a timestamp; write it like TIMESTAMP '2024-01-01 00:00:00'`, hint);
      return lit(v, t.timestamp());
    }
    case "interval":
      return lit(intervalMicros(ast.value, ast.unit, hint), t.interval());
    case "array": {
      const items: Expr[] = ast.items.map(sub);
      const element = commonTypeOf(items, "ARRAY[...]", hint);
      return call("make_array", items.map((x) => coerceLiteral(x, element, hint)), t.array(element));
    }
    case "index": {
      // `a[1]`: array elements, 1-based as in DataFusion.
      const e = sub(ast.expr);
      const index = sub(ast.index);
      // `m['key']`: the value, NULL when absent (DataFusion's get_field on a map).
      if (e.type.kind === "map") return resolveCall(SCALAR_FUNCTIONS.get("get_field")!, [e, index], hint, "[...]");
      if (e.type.kind !== "array") {
        throw new SqlError(`cannot index ${typeName(e.type)} with [...]; only arrays and maps can be indexed (JSON: write value->'key' or value->0)`, hint);
      }
      if (index.type.kind !== "int") throw new SqlError(`an array index must be an integer, got ${typeName(index.type)}`, hint);
      return call("array_element", [e, index], e.type.element);
    }
    case "unary": {
      const e = sub(ast.expr);
      if (ast.op === "not") {
        if (e.type.kind !== "boolean" && !isNullLiteral(e)) throw new SqlError(`NOT needs a boolean, got ${typeName(e.type)}`, hint);
        return call("not", [e], t.boolean());
      }
      if (ast.op === "-") {
        if (e.kind === "literal" && typeof e.value === "number") return lit(e.type.kind === "int" ? 0 - e.value : -e.value, e.type);
        if (isNullLiteral(e)) return e;
        if (!isNumeric(e.type) && e.type.kind !== "interval") throw new SqlError(`cannot negate ${typeName(e.type)}`, hint);
        return call("neg", [e], e.type.kind === "int" && e.type.unsigned ? t.bigint() : e.type);
      }
      return e;
    }
    case "binary":
      return resolveBinary(ast, scope, ctx);
    case "between": {
      const op = ast.not ? "NOT BETWEEN" : "BETWEEN";
      const a = sub(ast.expr);
      const lo = coerceLiteral(sub(ast.low), a.type, hint);
      const hi = coerceLiteral(sub(ast.high), a.type, hint);
      comparisonCheck(op, a, lo, hint);
      comparisonCheck(op, a, hi, hint);
      return call(ast.not ? "not_between" : "between", [a, lo, hi], t.boolean());
    }
    case "in_list": {
      const op = ast.not ? "NOT IN" : "IN";
      const a = sub(ast.expr);
      const items = ast.list.map((x) => coerceLiteral(sub(x), a.type, hint));
      for (const item of items) comparisonCheck(op, a, item, hint);
      return call(ast.not ? "not_in" : "in", [a, ...items], t.boolean());
    }
    case "in_subquery":
      throw new SqlError(
        `${ast.not ? "NOT IN" : "IN"} (subquery) is supported as a condition of WHERE, alone or joined to others by AND, not in ${ctx.clause === "WHERE" ? "an OR or under another operator" : ctx.clause}; ` +
          "split an OR into a UNION ALL of queries, or LEFT JOIN the subquery and test its column for NULL",
        hint,
      );
    case "exists":
      throw new SqlError(
        `EXISTS (subquery) is supported as a condition of WHERE, alone or joined to others by AND, not in ${ctx.clause === "WHERE" ? "an OR or under another operator" : ctx.clause}; ` +
          "split an OR into a UNION ALL of queries, or LEFT JOIN the subquery and test its column for NULL",
        hint,
      );
    case "subquery":
      // Scalar subqueries are planned as joins in the SELECT list and WHERE of a query without GROUP BY (planner/select.ts).
      throw new SqlError(
        `a scalar subquery is supported in the SELECT list and WHERE of a query without GROUP BY, not in ${ctx.clause}; ` +
          "group in a subquery in FROM and use the scalar subquery in the outer query",
        hint,
      );
    case "like": {
      const op = `${ast.not ? "NOT " : ""}${ast.caseInsensitive ? "ILIKE" : "LIKE"}`;
      const a = sub(ast.expr);
      const p = sub(ast.pattern);
      requireText(a, op, hint);
      requireText(p, `the pattern of ${op}`, hint);
      const args = [a, p];
      if (ast.escape) {
        const e = sub(ast.escape);
        if (e.kind !== "literal" || typeof e.value !== "string" || [...e.value].length !== 1) {
          throw new SqlError("ESCAPE takes one character, like ESCAPE '!'", hint);
        }
        args.push(e);
      }
      return call(op.toLowerCase().replace(" ", "_"), args, t.boolean());
    }
    case "is": {
      const a = sub(ast.expr);
      const neg = ast.not;
      if (ast.test === "null") return call(neg ? "is_not_null" : "is_null", [a], t.boolean());
      if (ast.test === "unknown") {
        if (a.type.kind !== "boolean" && !isNullLiteral(a)) throw new SqlError(`IS ${neg ? "NOT " : ""}UNKNOWN needs boolean operands; the left side is ${typeName(a.type)}`, hint);
        return call(neg ? "is_not_null" : "is_null", [a], t.boolean());
      }
      return call(`is_${neg ? "not_" : ""}${ast.test}`, [a], t.boolean());
    }
    case "case": {
      const operand = ast.operand ? sub(ast.operand) : undefined;
      const whens: { when: Expr; then: Expr }[] = [];
      for (const arm of ast.whens) {
        let when = sub(arm.when);
        if (!operand && when.type.kind !== "boolean" && !isNullLiteral(when)) {
          throw new SqlError(`CASE WHEN needs a boolean condition, got ${typeName(when.type)}`, arm.at);
        }
        if (operand) {
          when = coerceLiteral(when, operand.type, arm.at);
          comparisonCheck("CASE", operand, when, arm.at);
        }
        whens.push({ when, then: sub(arm.then) });
      }
      const otherwise = ast.otherwise ? sub(ast.otherwise) : undefined;
      const results = [...whens.map((w) => w.then), ...(otherwise ? [otherwise] : [])];
      const type = commonTypeOf(results, "CASE", hint);
      return { kind: "case", operand, whens, otherwise, type };
    }
    case "cast":
      return resolveCast(ast, sub(ast.expr));
    case "extract": {
      const source = sub(ast.source);
      let part: string;
      try {
        part = datePartName(ast.field);
      } catch (err) {
        throw new SqlError((err as Error).message, hint);
      }
      if (source.type.kind === "interval") {
        if (part !== "epoch") throw new SqlError("EXTRACT from an INTERVAL supports only EPOCH (its length in seconds)", hint);
      } else if (source.type.kind !== "timestamp" && !isNullLiteral(source)) {
        throw new SqlError(`EXTRACT needs a TIMESTAMP, got ${typeName(source.type)}`, hint);
      }
      const type = DATE_PARTS[part]!.fractional ? t.double() : t.bigint();
      return call("date_part", [lit(part, t.string()), source], type);
    }
    case "call":
      return resolveFunction(ast, scope, ctx);
  }
}

const requireText = (e: Expr, what: string, hint: number) => {
  if (e.type.kind !== "string" && e.type.kind !== "json" && !isNullLiteral(e)) throw new SqlError(`${what} needs TEXT, got ${typeName(e.type)}`, hint);
};

function resolveCast(ast: Extract<A.Expr, { kind: "cast" }>, e: Expr): Expr {
  const type = ast.type;
  const hint = ast.at;
  // datafusion-functions-json reads the value as the target type rather than casting JSON text: "123" is not a number.
  if (isJsonGet(e) && !ast.safe) {
    const getter =
      type.kind === "boolean" ? "json_get_bool"
      : type.kind === "float" || type.kind === "decimal" ? "json_get_float"
      : type.kind === "int" ? "json_get_int"
      : type.kind === "string" ? "json_get_str"
      : null;
    if (getter) {
      const read = call(getter, (e as Extract<Expr, { kind: "call" }>).args, getter === "json_get_str" ? t.string() : getter === "json_get_bool" ? t.boolean() : getter === "json_get_int" ? t.bigint() : t.double());
      return read.type.kind === type.kind && (type.kind !== "int" || type.bits === 64) && type.kind !== "decimal" ? read : { kind: "cast", expr: read, type };
    }
  }
  return castTo(e, type, hint, ast.safe);
}

/** CAST (or TRY_CAST, `safe`) of `e`: refused casts are errors here, constants are cast now. */
function castTo(e: Expr, type: SqlType, hint: number | null, safe: boolean): Expr {
  if (isNullLiteral(e)) return lit(null, type);
  const refused = refusedCast(e.type, type);
  if (refused) throw new SqlError(refused, hint);
  if (e.kind === "literal") {
    try {
      return lit(castValue(e.value, e.type, type), type);
    } catch (err) {
      if (!(err instanceof ExprError)) throw err;
      if (safe) return lit(null, type);
      throw new SqlError(err.message, hint);
    }
  }
  return safe ? { kind: "cast", expr: e, type, safe } : { kind: "cast", expr: e, type };
}

function resolveBinary(ast: Extract<A.Expr, { kind: "binary" }>, scope: Scope, ctx: ExprContext): Expr {
  const op = ast.op.toUpperCase();
  const hint = ast.at;
  const sub = (x: A.Expr) => resolveExpr(x, scope, ctx);
  const bool = t.boolean();
  const requireBool = (e: Expr, side: string) => {
    if (e.type.kind !== "boolean" && !isNullLiteral(e)) throw new SqlError(`${op} needs boolean operands; the ${side} side is ${typeName(e.type)}`, hint);
  };
  switch (op) {
    case "AND":
    case "OR": {
      const a = sub(ast.left);
      const b = sub(ast.right);
      requireBool(a, "left");
      requireBool(b, "right");
      return call(op.toLowerCase(), [a, b], bool);
    }
    case "~":
    case "~*":
    case "!~":
    case "!~*": {
      const a = sub(ast.left);
      const p = sub(ast.right);
      requireText(a, op, hint);
      requireText(p, `the pattern of ${op}`, hint);
      const flags = lit(op.endsWith("*") ? "i" : "", t.string());
      const f = SCALAR_FUNCTIONS.get("regexp_like")!;
      checkFunction(f, [a, p, flags], hint);
      const match = call("regexp_like", [a, p, flags], bool);
      return op.startsWith("!") ? call("not", [match], bool) : match;
    }
    case "IS DISTINCT FROM":
    case "IS NOT DISTINCT FROM": {
      const a = sub(ast.left);
      const b = coerceLiteral(sub(ast.right), a.type, hint);
      const a2 = coerceLiteral(a, b.type, hint);
      comparisonCheck("IS DISTINCT FROM", a2, b, hint);
      return call(op === "IS DISTINCT FROM" ? "is_distinct_from" : "is_not_distinct_from", [a2, b], bool);
    }
    case "=":
    case "<>":
    case "<":
    case "<=":
    case ">":
    case ">=": {
      let a = sub(ast.left);
      let b = sub(ast.right);
      a = coerceLiteral(a, b.type, hint);
      b = coerceLiteral(b, a.type, hint);
      comparisonCheck(op, a, b, hint);
      // Comparing with NULL is NULL, whatever the other side would have given.
      if (isNullLiteral(a) || isNullLiteral(b)) return lit(null, bool);
      return call(op, [a, b], bool);
    }
    case "+":
    case "-":
    case "*":
    case "/":
    case "%": {
      const a = sub(ast.left);
      const b = sub(ast.right);
      // NULL operands give NULL, typed as the operation would be (a bare NULL takes the other side's type).
      const untyped = (x: Expr) => isNullLiteral(x) && x.type === NULL_TYPE;
      if (untyped(a) && untyped(b)) return lit(null, NULL_TYPE);
      const type = arithmeticType(op, untyped(a) ? b.type : a.type, untyped(b) ? a.type : b.type, hint);
      if (isNullLiteral(a) || isNullLiteral(b)) return lit(null, type);
      return call(op, [a, b], type);
    }
    case "||": {
      const a = sub(ast.left);
      const b = sub(ast.right);
      for (const x of [a, b]) {
        if (x.type.kind === "array" || x.type.kind === "struct" || x.type.kind === "map") throw new SqlError(`|| joins text; it cannot take ${typeName(x.type)}`, hint);
      }
      return call("||", [a, b], t.string());
    }
    case "->":
    case "->>":
    case "?": {
      const name = op === "->" ? "json_get" : op === "->>" ? "json_as_text" : "json_contains";
      return resolveCall(SCALAR_FUNCTIONS.get(name)!, [sub(ast.left), sub(ast.right)], hint, op);
    }
  }
  throw new SqlError(`operator ${ast.op} is not supported`, hint);
}

/** Checks a call's arguments against the function's kinds and constants; SqlErrors at `hint`. */
function checkFunction(f: ScalarFunction, args: Expr[], hint: number | null, shown = `${f.name}()`): void {
  if (args.length < minArgs(f) || args.length > maxArgs(f)) {
    const min = minArgs(f);
    const max = maxArgs(f);
    const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    throw new SqlError(`${shown} takes ${want} argument(s), got ${args.length}`, hint);
  }
  args.forEach((a, i) => {
    const kind = argKind(f, i);
    if (!isNullLiteral(a) && !accepts(kind, a.type)) {
      throw new SqlError(`${shown} takes ${KIND_NAMES[kind]} as argument ${i + 1}, got ${typeName(a.type)}; cast it`, hint);
    }
  });
  try {
    f.check?.(argInfos(args));
  } catch (err) {
    if (err instanceof ExprError) throw new SqlError(err.message, hint);
    throw err;
  }
}

function resolveCall(f: ScalarFunction, args: Expr[], hint: number | null, shown?: string): Expr {
  checkFunction(f, args, hint, shown);
  let type: SqlType;
  try {
    type = typeof f.returns === "function" ? f.returns(argInfos(args)) : f.returns;
  } catch (err) {
    if (err instanceof ExprError) throw new SqlError(`${shown ?? f.name + "()"}: ${err.message}`, hint);
    throw err;
  }
  return call(f.name, args, type);
}

function resolveFunction(ast: Extract<A.Expr, { kind: "call" }>, scope: Scope, ctx: ExprContext): Expr {
  const name = ast.name;
  const hint = ast.at;
  const sub = (x: A.Expr) => resolveExpr(x, scope, ctx);
  if (ast.over) {
    throw new SqlError(
      `window function ${name.toUpperCase()}() OVER (...) is not allowed in ${ctx.clause}; ` +
        "compute it in the SELECT list of a subquery (AS rn) and use that column in the outer query",
      hint,
    );
  }
  if (WINDOW_FUNCTIONS.has(name)) {
    throw new SqlError(`${name}() defines a window and belongs in GROUP BY (select it AS window and GROUP BY window)`, hint);
  }
  if (BUILTIN_AGGREGATE_NAMES.has(name) || AGGREGATE_FUNCTIONS.has(name) || ctx.registry.udaf(name)) {
    throw new SqlError(`aggregate function ${name}() is not allowed in ${ctx.clause}`, hint);
  }
  if (name === "exists") throw new SqlError("EXISTS (subquery) is not supported; join the tables instead", hint);
  if (name === "any" || name === "all" || name === "some") throw new SqlError(`${name.toUpperCase()}(...) is not supported; write x IN (a, b, ...)`, hint);
  if (name === "rollup" || name === "cube" || name === "grouping") {
    throw new SqlError(`GROUP BY ${name.toUpperCase()}(...) is not supported; write one query per grouping and combine them with UNION ALL`, hint);
  }
  if (name === "explode") throw new SqlError("explode() is Spark's; write unnest(array) in the SELECT list", hint);
  if (name === "unnest") {
    throw new SqlError(
      `unnest() is allowed in the SELECT list of a query without GROUP BY or window functions, not in ${ctx.clause}; unnest in a subquery and use its column here`,
      hint,
    );
  }
  if (ast.distinct || ast.filter || ast.orderBy || ast.withinGroup) {
    throw new SqlError(`${name}() is not an aggregate function; DISTINCT, FILTER, ORDER BY and WITHIN GROUP apply to aggregates`, hint);
  }
  if (name === "current_timestamp" || name === "now") {
    if (ast.args.length > 0) throw new SqlError(`${name}() takes no arguments`, hint);
    return call("now", [], t.timestamp());
  }
  const udf = ctx.registry.udf(name);
  const f = SCALAR_FUNCTIONS.get(name);
  if (!udf && !f && !["not", "coalesce", "nullif"].includes(name)) {
    const hintText = UNSUPPORTED_FUNCTIONS[name];
    if (hintText !== undefined) throw new SqlError(`${name}() is not supported by Runnel: ${hintText}`, hint);
    const known = [...SCALAR_FUNCTIONS.keys(), ...ctx.registry.udfs.keys(), "coalesce", "nullif", "now", "count", "sum", "avg", "min", "max"];
    throw new SqlError(`unknown function ${name}()${didYouMean(name, known)}`, hint);
  }
  const args = ast.args.map(sub);
  if (name === "not" && args.length === 1) {
    // `NOT (x)` reaches us as a call to a function named not.
    if (args[0]!.type.kind !== "boolean" && !isNullLiteral(args[0]!)) throw new SqlError(`NOT needs a boolean, got ${typeName(args[0]!.type)}`, hint);
    return call("not", args, t.boolean());
  }
  if (name === "coalesce") {
    if (args.length === 0) throw new SqlError("coalesce needs at least one argument", hint);
    return call(name, args, commonTypeOf(args, "coalesce()", hint));
  }
  if (name === "nullif") {
    if (args.length !== 2) throw new SqlError("nullif takes two arguments", hint);
    comparisonCheck("nullif()", args[0]!, args[1]!, hint);
    return call(name, args, isNullLiteral(args[0]!) ? args[1]!.type : args[0]!.type);
  }
  if (udf) {
    if (args.length !== udf.args.length) {
      throw new SqlError(`${name}() takes ${udf.args.length} argument(s), got ${args.length}`, hint);
    }
    let async: Required<AsyncUdfOptions> | undefined;
    try {
      async = asyncOptions(udf);
    } catch (err) {
      throw new SqlError((err as Error).message, hint);
    }
    if (async && !ASYNC_UDF_CLAUSES.has(ctx.clause)) {
      throw new SqlError(
        `async UDF ${name}() can be called in SELECT, WHERE and HAVING, not in ${ctx.clause}; compute it in a subquery (SELECT ${name}(...) AS v FROM ...) and use v here`,
        hint,
      );
    }
    return { kind: "udf", name, args, type: udf.returns, fn: udf.fn, strict: udf.strict ?? false, ...(async ? { async } : {}) };
  }
  return resolveCall(f!, args, hint);
}

const KEYS = new WeakMap<object, string>();

/**
 * A stable text form of a resolved expression, for matching GROUP BY keys and
 * deduplicating aggregates. Subexpressions' keys are remembered and joined by
 * concatenation (cheap for the engine's rope strings), so keying every level of a
 * long expression stays linear.
 */
export function exprKey(e: Expr): string {
  const hit = KEYS.get(e);
  if (hit !== undefined) return hit;
  let out = "{";
  for (const [k, v] of Object.entries(e)) {
    if (k === "fn" || v === undefined) continue;
    out += k + ":";
    if (k === "name") out += JSON.stringify(String(v).toLowerCase());
    else if (k === "expr" || k === "operand" || k === "otherwise") out += exprKey(v as Expr);
    else if (k === "args") {
      out += "[";
      for (const a of v as Expr[]) out += exprKey(a) + ",";
      out += "]";
    } else if (k === "whens") {
      out += "[";
      for (const w of v as { when: Expr; then: Expr }[]) out += exprKey(w.when) + "=>" + exprKey(w.then) + ",";
      out += "]";
    } else out += JSON.stringify(v);
    out += ";";
  }
  out += "}";
  KEYS.set(e, out);
  return out;
}
