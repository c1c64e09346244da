/**
 * Resolves node-sql-parser expression ASTs against a scope of columns into
 * typed engine expressions, checking names, arity and types as it goes.
 */
import { t, typeName, type SqlType } from "../plugin-api/index.ts";
import type { Expr } from "../expr/expr.ts";
import { SCALAR_FUNCTIONS } from "../expr/functions.ts";
import { castValue, CastError, parseTimestamp } from "../expr/values.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { didYouMean, SqlError } from "./errors.ts";
import type { RewrittenText } from "./parse.ts";
import { isNumeric, typeFromCastTarget } from "./types.ts";

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
  text: RewrittenText;
  registry: PluginRegistry;
  /** The clause being resolved, for messages ("WHERE", "the SELECT list"). */
  clause: string;
  /** Intercepts nodes before normal resolution (aggregates and group keys after GROUP BY). */
  hook?: (ast: any, hint: number | null) => Expr | undefined;
}

export const WINDOW_FUNCTIONS = new Set(["tumble", "hop", "session"]);
const NULL_TYPE: SqlType = { kind: "string" };

/** The position of an AST node in the user's script, if the parser recorded one. */
export function astOffset(ast: any, ctx: { text: RewrittenText }): number | null {
  const off = ast?.loc?.start?.offset;
  return typeof off === "number" ? ctx.text.toOriginal(off) : null;
}

/** Finds where an identifier is written, searching from `hint` (node-sql-parser keeps no positions for names). */
export function locate(ctx: { text: RewrittenText }, name: string, hint: number | null): number | null {
  const lower = name.toLowerCase();
  const tokens = ctx.text.tokens;
  const match = (tok: (typeof tokens)[number]) => (tok.kind === "word" || tok.kind === "quoted") && tok.text.toLowerCase() === lower;
  if (hint !== null) {
    // Tokens are in order: start the search at the first one at or after the hint.
    let lo = 0;
    let hi = tokens.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (tokens[mid]!.start < hint) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < tokens.length; i++) if (match(tokens[i]!)) return tokens[i]!.start;
  }
  return tokens.find(match)?.start ?? hint;
}

export function columnName(ast: any): string {
  const c = ast?.column;
  if (typeof c === "string") return c;
  return String(c?.expr?.value ?? c?.value ?? "");
}

export function functionName(ast: any): string {
  const parts = ast?.name?.name;
  if (Array.isArray(parts)) return String(parts[parts.length - 1]?.value ?? "").toLowerCase();
  return String(ast?.name ?? "").toLowerCase();
}

export function functionArgs(ast: any): any[] {
  const args = ast?.args;
  if (!args) return [];
  if (Array.isArray(args.value)) return args.value;
  if (args.expr) return [args.expr];
  return [];
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

function resolveColumnRef(ast: any, scope: Scope, ctx: ExprContext, hint: number | null): Expr {
  const name = columnName(ast);
  const parts = [ast.schema, ast.table, name].filter((p) => p !== null && p !== undefined && p !== "").map(String);
  const offset = locate(ctx, parts[0]!, hint);
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
    if (qualified) return parts.slice(2).reduce((e, f) => fieldOf(e, f, offset), qualified);
    const base = unique(findColumns(scope, parts[0]!), parts[0]!);
    if (base) return parts.slice(1).reduce((e, f) => fieldOf(e, f, offset), base);
    if (scope.columns.some((c) => c.qualifier?.toLowerCase() === parts[0]!.toLowerCase())) {
      const inTable = scope.columns.filter((c) => c.qualifier?.toLowerCase() === parts[0]!.toLowerCase()).map((c) => c.name);
      throw new SqlError(`unknown column \`${parts[1]}\` in \`${parts[0]}\`${didYouMean(parts[1]!, inTable)}`, locate(ctx, parts[1]!, hint));
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
      const extra = /^(month|year)s?$/.test(parts[i + 1]!) ? " (months and years are not fixed lengths of time)" : "";
      throw new SqlError(`unknown interval unit '${parts[i + 1]}'${extra}; use microseconds to weeks`, offset);
    }
    total += n * u;
  }
  return Math.round(total);
}

const lit = (value: unknown, type: SqlType): Expr => ({ kind: "literal", value, type });
const isNullLiteral = (e: Expr) => e.kind === "literal" && e.value === null;

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
  if (a.kind === b.kind) return true;
  if (isNumeric(a) && isNumeric(b)) return true;
  const textual = (x: SqlType) => x.kind === "string" || x.kind === "json";
  return textual(a) && textual(b);
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
    return t.double();
  }
  throw new SqlError(`operator ${op} cannot combine ${typeName(a)} and ${typeName(b)}; cast one side`, offset);
}

function typeOfFirstKnown(args: Expr[]): SqlType {
  return args.find((a) => !isNullLiteral(a))?.type ?? NULL_TYPE;
}

/**
 * Resolutions without a hook, by parser node and scope. After GROUP BY every
 * subexpression is tried against the grouping keys, which resolves each subtree
 * again at every level of the expression; remembering them keeps planning linear.
 */
const RESOLVED = new WeakMap<object, WeakMap<Scope, Expr>>();

export function resolveExpr(ast: any, scope: Scope, ctx: ExprContext, hintIn: number | null = null): Expr {
  if (ctx.hook || !ast || typeof ast !== "object") return resolveUncached(ast, scope, ctx, hintIn);
  let byScope = RESOLVED.get(ast);
  const hit = byScope?.get(scope);
  if (hit) return hit;
  const e = resolveUncached(ast, scope, ctx, hintIn);
  if (!byScope) RESOLVED.set(ast, (byScope = new WeakMap()));
  byScope.set(scope, e);
  return e;
}

function resolveUncached(ast: any, scope: Scope, ctx: ExprContext, hintIn: number | null): Expr {
  const hint = astOffset(ast, ctx) ?? hintIn;
  if (ctx.hook) {
    const hooked = ctx.hook(ast, hint);
    if (hooked) return hooked;
  }
  const sub = (x: any) => resolveExpr(x, scope, ctx, hint);
  switch (ast?.type) {
    case "column_ref": {
      if (columnName(ast) === "*") throw new SqlError(`* is only allowed in the SELECT list or count(*)`, hint);
      return resolveColumnRef(ast, scope, ctx, hint);
    }
    case "number": {
      const raw = String(ast.value);
      return /[.eE]/.test(raw) ? lit(Number(raw), t.double()) : lit(Number(raw), t.bigint());
    }
    case "single_quote_string":
    case "string":
    case "natural_string":
    case "regex_string":
    case "hex_string":
    case "full_hex_string":
    case "var_string":
      return lit(String(ast.value), t.string());
    case "double_quote_string":
      return resolveColumnRef({ column: String(ast.value) }, scope, ctx, hint);
    case "bool":
      return lit(Boolean(ast.value), t.boolean());
    case "null":
      return lit(null, NULL_TYPE);
    case "interval": {
      const value = String(ast.expr?.value ?? "");
      return lit(intervalMicros(value, String(ast.unit ?? ""), hint), t.interval());
    }
    case "expr_list": {
      const items = ast.value ?? [];
      if (items.length === 1) return sub(items[0]);
      throw new SqlError("a list of values is only allowed after IN", hint);
    }
    case "unary_expr": {
      const e = sub(ast.expr);
      const op = String(ast.operator).toUpperCase();
      if (op === "NOT") {
        if (e.type.kind !== "boolean" && !isNullLiteral(e)) throw new SqlError(`NOT needs a boolean, got ${typeName(e.type)}`, hint);
        return { kind: "call", name: "not", args: [e], type: t.boolean() };
      }
      if (op === "-") {
        if (e.kind === "literal" && typeof e.value === "number") return lit(-e.value, e.type);
        if (!isNumeric(e.type) && e.type.kind !== "interval") throw new SqlError(`cannot negate ${typeName(e.type)}`, hint);
        return { kind: "call", name: "neg", args: [e], type: e.type };
      }
      if (op === "+") return e;
      throw new SqlError(`unsupported operator ${ast.operator}`, hint);
    }
    case "binary_expr":
      return resolveBinary(ast, scope, ctx, hint);
    case "case": {
      const operand = ast.expr ? sub(ast.expr) : undefined;
      const whens: { when: Expr; then: Expr }[] = [];
      let otherwise: Expr | undefined;
      for (const arm of ast.args ?? []) {
        if (arm.type === "when") {
          const when = sub(arm.cond);
          if (!operand && when.type.kind !== "boolean" && !isNullLiteral(when)) {
            throw new SqlError(`CASE WHEN needs a boolean condition, got ${typeName(when.type)}`, astOffset(arm.cond, ctx) ?? hint);
          }
          whens.push({ when: operand ? coerceLiteral(when, operand.type, hint) : when, then: sub(arm.result) });
        } else otherwise = sub(arm.result);
      }
      const type = typeOfFirstKnown([...whens.map((w) => w.then), ...(otherwise ? [otherwise] : [])]);
      return { kind: "case", operand, whens, otherwise, type };
    }
    case "cast": {
      const target = Array.isArray(ast.target) ? ast.target[0] : ast.target;
      const type = typeFromCastTarget(target, hint);
      const e = sub(ast.expr);
      if (e.kind === "literal") {
        try {
          return lit(castValue(e.value, e.type, type), type);
        } catch (err) {
          if (err instanceof CastError) throw new SqlError(err.message, hint);
          throw err;
        }
      }
      return { kind: "cast", expr: e, type };
    }
    case "extract": {
      const field = String(ast.args?.field ?? "").toLowerCase();
      const source = sub(ast.args?.source);
      if (source.type.kind !== "timestamp") throw new SqlError(`EXTRACT needs a TIMESTAMP, got ${typeName(source.type)}`, hint);
      const fractional = ["second", "epoch", "millisecond"].includes(field);
      return { kind: "call", name: "date_part", args: [lit(field, t.string()), source], type: fractional ? t.double() : t.bigint() };
    }
    case "function":
      return resolveFunction(ast, scope, ctx, hint);
    case "aggr_func":
      throw new SqlError(`aggregate function ${String(ast.name).toLowerCase()}() is not allowed in ${ctx.clause}`, hint);
    case "select":
      throw new SqlError("subqueries in expressions are not supported; use a subquery in FROM or a CTE", hint);
    default:
      throw new SqlError(`unsupported expression${ast?.type ? ` (${ast.type})` : ""}`, hint);
  }
}

function resolveBinary(ast: any, scope: Scope, ctx: ExprContext, hint: number | null): Expr {
  const op = String(ast.operator).toUpperCase();
  const sub = (x: any) => resolveExpr(x, scope, ctx, hint);
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
      return { kind: "call", name: op.toLowerCase(), args: [a, b], type: bool };
    }
    case "IN":
    case "NOT IN": {
      const a = sub(ast.left);
      const list = ast.right?.type === "expr_list" ? ast.right.value : null;
      if (!list) throw new SqlError(`${op} needs a list of values; subqueries are not supported`, hint);
      const items = list.map((x: any) => coerceLiteral(sub(x), a.type, hint));
      for (const item of items) {
        if (!comparable(a.type, item.type) && !isNullLiteral(item)) {
          throw new SqlError(`${op} compares ${typeName(a.type)} with ${typeName(item.type)}`, hint);
        }
      }
      return { kind: "call", name: op === "IN" ? "in" : "not_in", args: [a, ...items], type: bool };
    }
    case "BETWEEN":
    case "NOT BETWEEN": {
      const a = sub(ast.left);
      const [lo, hi] = (ast.right?.value ?? []).map((x: any) => coerceLiteral(sub(x), a.type, hint));
      if (!lo || !hi) throw new SqlError(`${op} needs two bounds: x BETWEEN low AND high`, hint);
      return { kind: "call", name: op === "BETWEEN" ? "between" : "not_between", args: [a, lo, hi], type: bool };
    }
    case "LIKE":
    case "NOT LIKE":
    case "ILIKE":
    case "NOT ILIKE": {
      const a = sub(ast.left);
      const p = sub(ast.right);
      if (a.type.kind !== "string" && !isNullLiteral(a)) throw new SqlError(`${op} needs text, got ${typeName(a.type)}`, hint);
      return { kind: "call", name: op.toLowerCase().replace(" ", "_"), args: [a, p], type: bool };
    }
    case "IS":
    case "IS NOT": {
      const a = sub(ast.left);
      const neg = op === "IS NOT";
      if (ast.right?.type === "null") return { kind: "call", name: neg ? "is_not_null" : "is_null", args: [a], type: bool };
      if (ast.right?.type === "bool") {
        const v = Boolean(ast.right.value);
        const name = `is_${neg ? "not_" : ""}${v ? "true" : "false"}`;
        return { kind: "call", name, args: [a], type: bool };
      }
      throw new SqlError(`${op} must be followed by NULL, TRUE or FALSE`, hint);
    }
    case "IS DISTINCT FROM":
    case "IS NOT DISTINCT FROM": {
      const a = sub(ast.left);
      const b = coerceLiteral(sub(ast.right), a.type, hint);
      return { kind: "call", name: op === "IS DISTINCT FROM" ? "is_distinct_from" : "is_not_distinct_from", args: [a, b], type: bool };
    }
    case "=":
    case "!=":
    case "<>":
    case "<":
    case "<=":
    case ">":
    case ">=": {
      let a = sub(ast.left);
      let b = sub(ast.right);
      a = coerceLiteral(a, b.type, hint);
      b = coerceLiteral(b, a.type, hint);
      if (!comparable(a.type, b.type)) throw new SqlError(`cannot compare ${typeName(a.type)} with ${typeName(b.type)}; cast one side`, hint);
      return { kind: "call", name: op === "!=" ? "<>" : op, args: [a, b], type: bool };
    }
    case "+":
    case "-":
    case "*":
    case "/":
    case "%": {
      const a = sub(ast.left);
      const b = sub(ast.right);
      if (isNullLiteral(a) || isNullLiteral(b)) return lit(null, isNullLiteral(a) ? b.type : a.type);
      return { kind: "call", name: op, args: [a, b], type: arithmeticType(op, a.type, b.type, hint) };
    }
    case "||": {
      const a = sub(ast.left);
      const b = sub(ast.right);
      return { kind: "call", name: "||", args: [a, b], type: t.string() };
    }
    case "->":
    case "->>": {
      const a = sub(ast.left);
      const b = sub(ast.right);
      if (a.type.kind !== "json" && a.type.kind !== "string") throw new SqlError(`${op} needs JSON on the left, got ${typeName(a.type)}`, hint);
      return { kind: "call", name: op, args: [a, b], type: op === "->" ? t.json() : t.string() };
    }
  }
  throw new SqlError(`unsupported operator ${ast.operator}`, hint);
}

function resolveFunction(ast: any, scope: Scope, ctx: ExprContext, hint: number | null): Expr {
  const name = functionName(ast);
  const argAsts = functionArgs(ast);
  const sub = (x: any) => resolveExpr(x, scope, ctx, hint);
  if (WINDOW_FUNCTIONS.has(name)) {
    throw new SqlError(`${name}() defines a window and belongs in GROUP BY (select it AS window and GROUP BY window)`, hint);
  }
  if (ctx.registry.udaf(name)) throw new SqlError(`aggregate function ${name}() is not allowed in ${ctx.clause}`, hint);
  if (name === "current_timestamp" || name === "now") {
    return { kind: "call", name: "now", args: [], type: t.timestamp() };
  }
  const args = argAsts.map(sub);
  if (name === "not" && args.length === 1) {
    // `NOT (x)` reaches us as a call to a function named not.
    if (args[0]!.type.kind !== "boolean" && !isNullLiteral(args[0]!)) throw new SqlError(`NOT needs a boolean, got ${typeName(args[0]!.type)}`, hint);
    return { kind: "call", name: "not", args, type: t.boolean() };
  }
  if (name === "coalesce") {
    if (args.length === 0) throw new SqlError("coalesce needs at least one argument", hint);
    return { kind: "call", name, args, type: typeOfFirstKnown(args) };
  }
  if (name === "nullif") {
    if (args.length !== 2) throw new SqlError("nullif takes two arguments", hint);
    return { kind: "call", name, args, type: typeOfFirstKnown(args) };
  }
  const udf = ctx.registry.udf(name);
  if (udf) {
    if (args.length !== udf.args.length) {
      throw new SqlError(`${name}() takes ${udf.args.length} argument(s), got ${args.length}`, hint);
    }
    return { kind: "udf", name, args, type: udf.returns, fn: udf.fn, strict: udf.strict ?? false };
  }
  const f = SCALAR_FUNCTIONS.get(name);
  if (!f) {
    const known = [...SCALAR_FUNCTIONS.keys(), ...ctx.registry.udfs.keys(), "coalesce", "nullif", "now", "count", "sum", "avg", "min", "max"];
    throw new SqlError(`unknown function ${name}()${didYouMean(name, known)}`, hint);
  }
  if (args.length < f.minArgs || args.length > f.maxArgs) {
    const want = f.minArgs === f.maxArgs ? `${f.minArgs}` : `${f.minArgs} to ${f.maxArgs}`;
    throw new SqlError(`${name}() takes ${want} argument(s), got ${args.length}`, hint);
  }
  if (name === "date_trunc" || name === "date_part") {
    if (args[1]!.type.kind !== "timestamp") throw new SqlError(`${name}() needs a TIMESTAMP as second argument, got ${typeName(args[1]!.type)}`, hint);
  }
  let type: SqlType;
  try {
    type = f.returns(args.map((a) => a.type));
  } catch (err) {
    throw new SqlError(`${name}(): ${(err as Error).message}`, hint);
  }
  return { kind: "call", name, args, type };
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
