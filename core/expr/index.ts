/**
 * The expression compiler: turns resolved expressions into JavaScript source
 * and compiles it once, so a projection or filter over a batch is one tight
 * loop with no interpretation per row. NULL follows SQL: operators propagate
 * it, AND/OR use three-valued logic, and a filter keeps rows only when true.
 */
import { RowOp, type Batch, type Row, type SqlType } from "../plugin-api/index.ts";
import type { Expr } from "./expr.ts";
import { argInfos, implementation, SCALAR_FUNCTIONS } from "./functions.ts";
import { likeRegex } from "./regex.ts";
import { castValue, CastError, checkInt, compareNumber, compareText, toText } from "./values.ts";

export type { Expr } from "./expr.ts";
export { SCALAR_FUNCTIONS, type ScalarFunction } from "./functions.ts";

export type CompiledExpr = (row: Row, time: number) => unknown;

/**
 * Code generation state. Every expression node becomes statements assigning a
 * temporary, so the generated source grows linearly with the expression and
 * nests only where evaluation is conditional (CASE, AND/OR, COALESCE): a flat
 * chain of thousands of `+` terms compiles as quickly as it parses.
 */
interface Env {
  /** Constants and functions referenced by index (`H[i]`). */
  refs: unknown[];
  temps: number;
  labels: number;
  /** Statements of the block being generated. */
  lines: string[];
  /** Scalar calls written more than once (by structure) → the variable holding their value for the current row. */
  memo: Map<string, string>;
}

/** A value not computed yet for this row (held in `H[0]`). */
const UNSET = Symbol("unset");

/** A call's structure, as the key of its memo. */
const callKey = (e: Expr) => JSON.stringify(e, (_k, v) => (typeof v === "bigint" ? `${v}n` : v));

/** Whether `e` always gives the same value for the same row: no volatile function (random(), now()) or UDF below it. */
function deterministic(e: Expr): boolean {
  switch (e.kind) {
    case "udf":
      return false;
    case "call":
      return !SCALAR_FUNCTIONS.get(e.name)?.volatile && e.args.every(deterministic);
    case "case":
      return (!e.operand || deterministic(e.operand)) && e.whens.every((w) => deterministic(w.when) && deterministic(w.then)) && (!e.otherwise || deterministic(e.otherwise));
    case "cast":
    case "field":
      return deterministic(e.expr);
    default:
      return true;
  }
}

/**
 * Library function calls that appear more than once among `exprs` (q21 lowers
 * the channel five times and matches the URL twice a row): each gets a memo
 * variable, so the call runs at most once per row. The memo is filled where the
 * call is first reached, not hoisted: a call under CASE or AND/OR still runs only
 * when that branch does, so an error it raises stays where it was.
 */
function memoize(env: Env, exprs: Expr[]): void {
  const seen = new Set<string>();
  const visit = (e: Expr): void => {
    if (e.kind === "call" && SCALAR_FUNCTIONS.has(e.name) && e.args.length > 0 && deterministic(e)) {
      const key = callKey(e);
      if (seen.has(key)) {
        if (!env.memo.has(key)) env.memo.set(key, `m${env.memo.size}`);
        return;
      }
      seen.add(key);
    }
    if (e.kind === "call" || e.kind === "udf") e.args.forEach(visit);
    else if (e.kind === "case") {
      if (e.operand) visit(e.operand);
      for (const w of e.whens) visit(w.when), visit(w.then);
      if (e.otherwise) visit(e.otherwise);
    } else if (e.kind === "cast" || e.kind === "field") visit(e.expr);
  };
  exprs.forEach(visit);
}

/** Declares the memo variables and marks them unset: at the start of each row. */
function memoReset(env: Env): { declare: string; reset: string } {
  const names = [...env.memo.values()];
  if (names.length === 0) return { declare: "", reset: "" };
  return { declare: `let ${names.join(", ")};`, reset: `${names.join(" = ")} = U;` };
}

function ref(env: Env, value: unknown): string {
  env.refs.push(value);
  return `H[${env.refs.length - 1}]`;
}

function temp(env: Env): string {
  return `t${env.temps++}`;
}

function literal(env: Env, value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "number") return Number.isFinite(value) ? (Object.is(value, -0) ? "-0" : String(value)) : ref(env, value);
  if (typeof value === "boolean") return String(value);
  if (typeof value === "string") return JSON.stringify(value);
  return ref(env, value);
}

const isInt = (t: SqlType) => t.kind === "int";

/** Assigns `code` to a new temporary and returns its name. */
function assign(env: Env, code: string): string {
  const t = temp(env);
  env.lines.push(`${t} = ${code};`);
  return t;
}

/** Generates `e` into a separate block (for conditional evaluation); returns the block's statements and value. */
function block(env: Env, e: Expr): { code: string; value: string } {
  const outer = env.lines;
  env.lines = [];
  const value = gen(e, env);
  const code = env.lines.join("\n");
  env.lines = outer;
  return { code, value };
}

/** `(a op b)` with NULL propagation. */
function binary(env: Env, a: string, b: string, body: (x: string, y: string) => string): string {
  return assign(env, `${a} == null || ${b} == null ? null : ${body(a, b)}`);
}

function unary(env: Env, a: string, body: (x: string) => string): string {
  return assign(env, `${a} == null ? null : ${body(a)}`);
}

/** A call of `fn` on the values of `args`; NULL if any is NULL when `strict`. */
function call(env: Env, fn: string, args: Expr[], strict: boolean): string {
  const values = args.map((a) => gen(a, env));
  if (!strict || values.length === 0) return assign(env, `${fn}(${values.join(", ")})`);
  return assign(env, `${values.map((v) => `${v} == null`).join(" || ")} ? null : ${fn}(${values.join(", ")})`);
}

/**
 * Generates the statements computing `e` into `env.lines` and returns a simple
 * JavaScript expression (a temporary, a column read or a constant) for its value.
 */
function gen(e: Expr, env: Env): string {
  switch (e.kind) {
    case "column":
      return `row[${e.index}]`;
    case "literal":
      return literal(env, e.value);
    case "event_time":
      return "time";
    case "field":
      return unary(env, gen(e.expr, env), (x) => `(${x}[${JSON.stringify(e.name)}] ?? null)`);
    case "cast": {
      const from = e.expr.type;
      if (from.kind === e.type.kind && from.kind !== "decimal" && (from.kind !== "int" || intWidens(from, e.type))) return gen(e.expr, env);
      const to = e.type;
      const convert = e.safe
        ? (v: unknown) => {
            try {
              return castValue(v, from, to);
            } catch (err) {
              if (err instanceof CastError) return null;
              throw err;
            }
          }
        : (v: unknown) => castValue(v, from, to);
      const fn = ref(env, convert);
      return unary(env, gen(e.expr, env), (x) => `${fn}(${x})`);
    }
    case "case": {
      // A labelled block: each arm breaks out once it matches, so arms do not nest.
      const result = temp(env);
      const label = `L${env.labels++}`;
      const operand = e.operand ? gen(e.operand, env) : null;
      const lines = [`${label}: {`];
      for (const w of e.whens) {
        const when = block(env, w.when);
        const then = block(env, w.then);
        const test = operand ? `${operand} != null && ${when.value} != null && ${equal(env, e.operand!.type, w.when.type, operand, when.value)}` : `${when.value} === true`;
        lines.push(when.code, `if (${test}) {`, then.code, `${result} = ${then.value}; break ${label}; }`);
      }
      const otherwise = e.otherwise ? block(env, e.otherwise) : { code: "", value: "null" };
      lines.push(otherwise.code, `${result} = ${otherwise.value}; }`);
      env.lines.push(...lines);
      return result;
    }
    case "udf": {
      // A UDF not declared async that returns a Promise would leave the Promise in the row.
      const declared = e.fn;
      const name = e.name;
      const fn = ref(env, (...args: unknown[]) => {
        const v = declared(...args);
        if (v !== null && typeof v === "object" && typeof (v as { then?: unknown }).then === "function") {
          throw new Error(`UDF ${name}() returned a Promise; declare it async (an async function, or async: true in its definition) so that its calls are awaited`);
        }
        return v;
      });
      return call(env, fn, e.args, e.strict);
    }
    case "call":
      return genCall(e, env);
  }
}

/**
 * The ordering function comparisons of these operand types need, or null when
 * JavaScript's operators already agree with SQL: text compares by code point
 * (UTF-8 byte order), floats put NaN above every number and equal to itself.
 */
function comparison(env: Env, a: SqlType, b: SqlType): string | null {
  const textual = (x: SqlType) => x.kind === "string" || x.kind === "json";
  if (textual(a) && textual(b)) return ref(env, compareText);
  if (a.kind === "float" || b.kind === "float" || a.kind === "decimal" || b.kind === "decimal") return ref(env, compareNumber);
  return null;
}

/** JavaScript for "x equals y" (both non-NULL) in SQL: NaN equals NaN. */
function equal(env: Env, a: SqlType, b: SqlType, x: string, y: string): string {
  const order = a.kind === "float" || b.kind === "float" || a.kind === "decimal" || b.kind === "decimal" ? comparison(env, a, b) : null;
  return order ? `${order}(${x}, ${y}) === 0` : `${x} === ${y}`;
}

/** + - * / with SQL's types: integers stay exact (an overflow is an error, division by zero NULL), DECIMAL keeps its scale, floats follow IEEE. */
function arithmetic(env: Env, e: Extract<Expr, { kind: "call" }>, a: string, b: string): string {
  const type = e.type;
  const op = e.name;
  let r: string;
  if (op === "/") {
    // Integers: truncating division, NULL for a zero divisor. Floats: IEEE, so x / 0.0 is ±inf and 0.0 / 0.0 NaN, as in DataFusion.
    r = binary(env, a, b, (x, y) => (isInt(type) ? `(${y} === 0 ? null : Math.trunc(${x} / ${y}) + 0)` : `${x} / ${y}`));
  } else {
    // + 0 turns JavaScript's -0 (0 * -5) into 0: integers have no negative zero.
    r = binary(env, a, b, (x, y) => (isInt(type) ? `${x} ${op} ${y} + 0` : `${x} ${op} ${y}`));
  }
  if (type.kind === "int" && op !== "/") {
    const [lo, hi] = type.bits === 32 ? (type.unsigned ? [0, 4294967295] : [-2147483648, 2147483647]) : type.unsigned ? [0, Number.MAX_SAFE_INTEGER] : [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
    const fail = ref(env, (v: number, x: number, y: number) => checkInt(v, type, () => `${x} ${op} ${y}`));
    env.lines.push(`if (${r} !== null && (${r} > ${hi} || ${r} < ${lo})) ${fail}(${r}, ${a}, ${b});`);
  } else if (type.kind === "decimal") {
    const f = 10 ** type.scale;
    env.lines.push(`if (${r} !== null) ${r} = Math.sign(${r}) * Math.round(Math.abs(${r}) * ${f}) / ${f};`);
  }
  return r;
}

function genCall(e: Extract<Expr, { kind: "call" }>, env: Env): string {
  const args = e.args;
  const a = () => gen(args[0]!, env);
  const b = () => gen(args[1]!, env);
  switch (e.name) {
    case "+":
    case "-":
    case "*":
      return arithmetic(env, e, a(), b());
    case "/":
      return arithmetic(env, e, a(), b());
    case "%":
      // Integer division and remainder by zero give NULL (DataFusion stops the query); floats follow IEEE (NaN).
      return binary(env, a(), b(), (x, y) => (isInt(e.type) ? `(${y} === 0 ? null : ${x} % ${y} + 0)` : `${x} % ${y}`));
    case "||": {
      const text = ref(env, toText);
      const ta = literal(env, args[0]!.type);
      const tb = literal(env, args[1]!.type);
      return binary(env, a(), b(), (x, y) => `${text}(${x}, ${ta}) + ${text}(${y}, ${tb})`);
    }
    case "=":
    case "<>":
    case "<":
    case "<=":
    case ">":
    case ">=": {
      // Equal text is equal strings: only ordering needs code point comparison.
      const textual = (x: SqlType) => x.kind === "string" || x.kind === "json";
      const equality = e.name === "=" || e.name === "<>";
      const order = equality && textual(args[0]!.type) && textual(args[1]!.type) ? null : comparison(env, args[0]!.type, args[1]!.type);
      if (!order) {
        const js = e.name === "=" ? "===" : e.name === "<>" ? "!==" : e.name;
        return binary(env, a(), b(), (x, y) => `${x} ${js} ${y}`);
      }
      return binary(env, a(), b(), (x, y) => `${order}(${x}, ${y}) ${e.name === "=" ? "===" : e.name === "<>" ? "!==" : e.name} 0`);
    }
    case "and":
    case "or": {
      // Three-valued logic; the right side is evaluated only when the left does not decide.
      const decides = e.name === "and" ? "false" : "true";
      const x = a();
      const result = temp(env);
      const right = block(env, args[1]!);
      const y = right.value;
      env.lines.push(
        `if (${x} === ${decides}) ${result} = ${decides}; else {`,
        right.code,
        `${result} = ${y} === ${decides} ? ${decides} : ${x} == null || ${y} == null ? null : ${e.name === "and" ? "true" : "false"}; }`,
      );
      return result;
    }
    case "not":
      return unary(env, a(), (x) => `!${x}`);
    case "neg":
      // 0 - x rather than -x: an integer is never -0 (it would turn 1 / x into -inf).
      return unary(env, a(), (x) => (isInt(e.type) ? `0 - ${x}` : `-${x}`));
    case "is_null":
      return assign(env, `${a()} == null`);
    case "is_not_null":
      return assign(env, `${a()} != null`);
    case "is_true":
      return assign(env, `${a()} === true`);
    case "is_false":
      return assign(env, `${a()} === false`);
    case "is_not_true":
      return assign(env, `${a()} !== true`);
    case "is_not_false":
      return assign(env, `${a()} !== false`);
    case "is_distinct_from":
    case "is_not_distinct_from": {
      const x = a();
      const y = b();
      const order = comparison(env, args[0]!.type, args[1]!.type);
      const same = order ? `(${x} == null ? ${y} == null : ${y} != null && ${order}(${x}, ${y}) === 0)` : `${x} === ${y}`;
      return assign(env, e.name === "is_distinct_from" ? `!(${same})` : same);
    }
    case "like":
    case "ilike":
    case "not_like":
    case "not_ilike": {
      const ci = e.name.includes("ilike");
      const neg = e.name.startsWith("not_") ? "!" : "";
      const pattern = args[1]!;
      const escape = args[2] ? String((args[2] as { value: unknown }).value) : "\\";
      if (pattern.kind === "literal" && typeof pattern.value === "string") {
        const re = ref(env, likeRegex(pattern.value, ci, escape));
        return unary(env, a(), (x) => `${neg}${re}.test(${x})`);
      }
      const like = ref(env, likeRegex);
      return binary(env, a(), b(), (x, y) => `${neg}${like}(${y}, ${ci}, ${JSON.stringify(escape)}).test(${x})`);
    }
    case "in":
    case "not_in": {
      const neg = e.name === "not_in";
      const x = a();
      const list = args.slice(1);
      if (list.every((l) => l.kind === "literal" && l.value !== null)) {
        const set = ref(env, new Set(list.map((l) => (l as { value: unknown }).value)));
        return assign(env, `${x} == null ? null : ${neg ? "!" : ""}${set}.has(${x})`);
      }
      // General form: true on a match, NULL when no match but a NULL in the list.
      const result = temp(env);
      const sawNull = temp(env);
      const label = `L${env.labels++}`;
      const lines = [`${label}: { if (${x} == null) { ${result} = null; break ${label}; } ${sawNull} = false;`];
      for (const item of list) {
        const y = block(env, item);
        lines.push(y.code, `if (${y.value} != null && ${equal(env, args[0]!.type, item.type, x, y.value)}) { ${result} = ${!neg}; break ${label}; } if (${y.value} == null) ${sawNull} = true;`);
      }
      lines.push(`${result} = ${sawNull} ? null : ${neg}; }`);
      env.lines.push(...lines);
      return result;
    }
    case "between":
    case "not_between": {
      const neg = e.name === "not_between" ? "!" : "";
      const x = a();
      const lo = b();
      const hi = gen(args[2]!, env);
      const order = comparison(env, args[0]!.type, args[1]!.type) ?? comparison(env, args[0]!.type, args[2]!.type);
      // x >= lo AND x <= hi, with three-valued logic: 0 BETWEEN 7 AND NULL is false, not NULL.
      const ge = assign(env, `${x} == null || ${lo} == null ? null : ${order ? `${order}(${x}, ${lo}) >= 0` : `${x} >= ${lo}`}`);
      const le = assign(env, `${x} == null || ${hi} == null ? null : ${order ? `${order}(${x}, ${hi}) <= 0` : `${x} <= ${hi}`}`);
      const both = `(${ge} === false || ${le} === false ? false : ${ge} == null || ${le} == null ? null : true)`;
      return assign(env, neg ? `(${both} == null ? null : !${both})` : both);
    }
    case "coalesce": {
      const result = temp(env);
      const label = `L${env.labels++}`;
      const lines = [`${label}: {`];
      for (const arg of args) {
        const v = block(env, arg);
        lines.push(v.code, `if (${v.value} != null) { ${result} = ${v.value}; break ${label}; }`);
      }
      lines.push(`${result} = null; }`);
      env.lines.push(...lines);
      return result;
    }
    case "nullif": {
      // The second argument is evaluated only when the first is not NULL (NULL decides otherwise).
      const x = a();
      const result = temp(env);
      const y = block(env, args[1]!);
      env.lines.push(
        `if (${x} == null) ${result} = null; else {`,
        y.code,
        `${result} = ${y.value} != null && ${equal(env, args[0]!.type, args[1]!.type, x, y.value)} ? null : ${x}; }`,
      );
      return result;
    }
    case "make_array": {
      const values = args.map((x) => gen(x, env));
      return assign(env, `[${values.join(", ")}]`);
    }
    case "make_struct": {
      // args alternate: field values, names come from the type.
      if (e.type.kind !== "struct") throw new Error("make_struct needs a struct type");
      const names = e.type.fields.map((f) => JSON.stringify(f.name));
      const values = args.map((x) => gen(x, env));
      return assign(env, `({${values.map((v, i) => `${names[i]}: ${v}`).join(", ")}})`);
    }
  }
  const f = SCALAR_FUNCTIONS.get(e.name);
  if (!f) throw new Error(`no implementation for function ${e.name}`);
  const impl = () => call(env, ref(env, implementation(f, argInfos(args))), args, f.strict !== false);
  const memo = env.memo.size > 0 ? env.memo.get(callKey(e)) : undefined;
  if (!memo) return impl();
  // Computed where first reached this row; later occurrences read it.
  const outer = env.lines;
  env.lines = [];
  const value = impl();
  const code = env.lines.join("\n");
  env.lines = outer;
  env.lines.push(`if (${memo} === U) {\n${code}\n${memo} = ${value}; }`);
  return memo;
}

function newEnv(): Env {
  return { refs: [UNSET], temps: 0, labels: 0, lines: [], memo: new Map() };
}

/** Every value of integer type `from` fits `to`, so a CAST between them needs no check. */
function intWidens(from: SqlType & { kind: "int" }, to: SqlType): boolean {
  if (to.kind !== "int") return false;
  if (!!from.unsigned === !!to.unsigned) return from.bits <= to.bits;
  return !!from.unsigned && from.bits < to.bits;
}

function declareTemps(env: Env): string {
  if (env.temps === 0) return "";
  return `let ${Array.from({ length: env.temps }, (_, i) => `t${i}`).join(", ")};`;
}

/** Compiles one expression to a function of (row, event time). */
export function compileExpr(e: Expr): CompiledExpr {
  if (e.kind === "column") {
    const i = e.index;
    return (row) => row[i] ?? null;
  }
  const env = newEnv();
  memoize(env, [e]);
  const value = gen(e, env);
  const memo = memoReset(env);
  const src = `const U = H[0];\nreturn function expr(row, time) { ${declareTemps(env)} ${memo.declare}\n${memo.reset}\n${env.lines.join("\n")}\nreturn ${value}; };`;
  return new Function("H", src)(env.refs) as CompiledExpr;
}

/** Compiles a projection to one function of (row, event time) building the output row (calls written twice run once). */
function compileProjection(exprs: Expr[]): (row: Row, time: number) => Row {
  const env = newEnv();
  memoize(env, exprs);
  const values = exprs.map((e) => gen(e, env));
  const memo = memoReset(env);
  const src = `const U = H[0];\nreturn function project(row, time) { ${declareTemps(env)} ${memo.declare}\n${memo.reset}\n${env.lines.join("\n")}\nreturn [${values.join(", ")}]; };`;
  return new Function("H", src)(env.refs) as (row: Row, time: number) => Row;
}

function isIdentity(exprs: Expr[], width: number | undefined): boolean {
  return width === exprs.length && exprs.every((e, i) => e.kind === "column" && e.index === i);
}

/**
 * Compiles filter-then-project over a batch into one loop. `inputWidth`, when
 * given, lets an identity projection pass rows through untouched.
 */
export function compileMap(exprs: Expr[], filter?: Expr, inputWidth?: number): (batch: Batch) => Batch {
  const env = newEnv();
  const identity = isIdentity(exprs, inputWidth);
  memoize(env, filter ? (identity ? [filter] : [filter, ...exprs]) : identity ? [] : exprs);
  let filterCode = "";
  if (filter) {
    const value = gen(filter, env);
    filterCode = `${env.lines.join("\n")}\nif (${value} !== true) continue;`;
    env.lines = [];
  }
  let projection = "row";
  if (!identity) {
    const values = exprs.map((e) => gen(e, env));
    projection = `[${values.join(", ")}]`;
  }
  const memo = memoReset(env);
  const src = `const U = H[0];
  return function map(batch) {
    const rows = batch.rows, times = batch.times, n = rows.length;
    const outRows = [], outTimes = [];
    ${declareTemps(env)} ${memo.declare}
    for (let i = 0; i < n; i++) {
      const row = rows[i], time = times[i];
      ${memo.reset}
      ${filterCode}
      ${env.lines.join("\n")}
      outRows.push(${projection});
      outTimes.push(time);
    }
    return { rows: outRows, times: outTimes };
  };`;
  const appendOnly = new Function("H", src)(env.refs) as (batch: Batch) => Batch;
  if (identity && !filter) return (batch) => batch;

  // Updating streams keep their ops: a filter turns an update whose old or new
  // value no longer qualifies into an insert or a delete.
  const project = identity ? null : compileProjection(exprs);
  const keep = filter ? compileExpr(filter) : null;
  const apply = (row: Row, time: number): Row => (project ? project(row, time) : row);
  const passes = (row: Row, time: number) => (keep ? keep(row, time) === true : true);
  const updating = (batch: Batch): Batch => {
    const rows: Row[] = [];
    const times: number[] = [];
    const ops: RowOp[] = [];
    const before: (Row | null)[] = [];
    for (let i = 0; i < batch.rows.length; i++) {
      const row = batch.rows[i]!;
      const time = batch.times[i]!;
      const op = batch.ops![i] ?? RowOp.Insert;
      const old = batch.before?.[i] ?? null;
      const now = passes(row, time);
      if (op === RowOp.Update && old) {
        const was = passes(old, time);
        if (was && now) {
          rows.push(apply(row, time));
          ops.push(RowOp.Update);
          before.push(apply(old, time));
        } else if (was) {
          rows.push(apply(old, time));
          ops.push(RowOp.Delete);
          before.push(null);
        } else if (now) {
          rows.push(apply(row, time));
          ops.push(RowOp.Insert);
          before.push(null);
        } else continue;
        times.push(time);
      } else if (now) {
        rows.push(apply(row, time));
        ops.push(op);
        before.push(null);
        times.push(time);
      }
    }
    return { rows, times, ops, before };
  };
  return (batch) => (batch.ops ? updating(batch) : appendOnly(batch));
}
