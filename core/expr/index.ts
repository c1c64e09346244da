/**
 * The expression compiler: turns resolved expressions into JavaScript source
 * and compiles it once, so a projection or filter over a batch is one tight
 * loop with no interpretation per row. NULL follows SQL: operators propagate
 * it, AND/OR use three-valued logic, and a filter keeps rows only when true.
 */
import { RowOp, type Batch, type Row, type SqlType } from "../plugin-api/index.ts";
import type { Expr } from "./expr.ts";
import { jsonArrow, likeRegex, SCALAR_FUNCTIONS } from "./functions.ts";
import { castValue, toText } from "./values.ts";

export type { Expr } from "./expr.ts";
export { SCALAR_FUNCTIONS, type ScalarFunction } from "./functions.ts";

export type CompiledExpr = (row: Row, time: number) => unknown;

/** Helpers the generated code reaches through `H`. */
interface Env {
  /** Constants and functions referenced by index. */
  refs: unknown[];
  temps: number;
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

/** `(a op b)` with NULL propagation. */
function binary(env: Env, a: string, b: string, body: (x: string, y: string) => string): string {
  const x = temp(env);
  const y = temp(env);
  return `((${x} = ${a}) == null || (${y} = ${b}) == null ? null : ${body(x, y)})`;
}

function unary(env: Env, a: string, body: (x: string) => string): string {
  const x = temp(env);
  return `((${x} = ${a}) == null ? null : ${body(x)})`;
}

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
      const fn = ref(env, (v: unknown) => castValue(v, from, e.type));
      return unary(env, gen(e.expr, env), (x) => `${fn}(${x})`);
    }
    case "case": {
      const otherwise = e.otherwise ? gen(e.otherwise, env) : "null";
      if (e.operand) {
        const o = temp(env);
        let code = otherwise;
        for (let i = e.whens.length - 1; i >= 0; i--) {
          const w = e.whens[i]!;
          code = `(${o} != null && ${o} === ${gen(w.when, env)} ? ${gen(w.then, env)} : ${code})`;
        }
        return `((${o} = ${gen(e.operand, env)}), ${code})`;
      }
      let code = otherwise;
      for (let i = e.whens.length - 1; i >= 0; i--) {
        const w = e.whens[i]!;
        code = `(${gen(w.when, env)} === true ? ${gen(w.then, env)} : ${code})`;
      }
      return code;
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
      const args = e.args.map((a) => gen(a, env));
      if (!e.strict || args.length === 0) return `${fn}(${args.join(", ")})`;
      const ts = args.map(() => temp(env));
      return `(${args.map((a, i) => `(${ts[i]} = ${a}) == null`).join(" || ")} ? null : ${fn}(${ts.join(", ")}))`;
    }
    case "call":
      return genCall(e, env);
  }
}

function genCall(e: Extract<Expr, { kind: "call" }>, env: Env): string {
  const args = e.args;
  const a = () => gen(args[0]!, env);
  const b = () => gen(args[1]!, env);
  switch (e.name) {
    case "+":
      return binary(env, a(), b(), (x, y) => `${x} + ${y}`);
    case "-":
      return binary(env, a(), b(), (x, y) => `${x} - ${y}`);
    case "*":
      return binary(env, a(), b(), (x, y) => (isInt(e.type) ? `Math.trunc(${x} * ${y})` : `${x} * ${y}`));
    case "/":
      return binary(env, a(), b(), (x, y) => (isInt(e.type) ? `(${y} === 0 ? null : Math.trunc(${x} / ${y}))` : `(${y} === 0 ? null : ${x} / ${y})`));
    case "%":
      return binary(env, a(), b(), (x, y) => `(${y} === 0 ? null : ${x} % ${y})`);
    case "||": {
      const text = ref(env, toText);
      const ta = literal(env, args[0]!.type);
      const tb = literal(env, args[1]!.type);
      return binary(env, a(), b(), (x, y) => `${text}(${x}, ${ta}) + ${text}(${y}, ${tb})`);
    }
    case "=":
      return binary(env, a(), b(), (x, y) => `${x} === ${y}`);
    case "<>":
      return binary(env, a(), b(), (x, y) => `${x} !== ${y}`);
    case "<":
    case "<=":
    case ">":
    case ">=":
      return binary(env, a(), b(), (x, y) => `${x} ${e.name} ${y}`);
    case "and": {
      const x = temp(env);
      const y = temp(env);
      return `((${x} = ${a()}) === false || (${y} = ${b()}) === false ? false : ${x} == null || ${y} == null ? null : true)`;
    }
    case "or": {
      const x = temp(env);
      const y = temp(env);
      return `((${x} = ${a()}) === true || (${y} = ${b()}) === true ? true : ${x} == null || ${y} == null ? null : false)`;
    }
    case "not":
      return unary(env, a(), (x) => `!${x}`);
    case "neg":
      return unary(env, a(), (x) => `-${x}`);
    case "is_null":
      return `(${a()} == null)`;
    case "is_not_null":
      return `(${a()} != null)`;
    case "is_true":
      return `(${a()} === true)`;
    case "is_false":
      return `(${a()} === false)`;
    case "is_not_true":
      return `(${a()} !== true)`;
    case "is_not_false":
      return `(${a()} !== false)`;
    case "is_distinct_from":
      return `(${a()} !== ${b()})`;
    case "is_not_distinct_from":
      return `(${a()} === ${b()})`;
    case "like":
    case "ilike":
    case "not_like":
    case "not_ilike": {
      const ci = e.name.includes("ilike");
      const neg = e.name.startsWith("not_") ? "!" : "";
      const pattern = args[1]!;
      if (pattern.kind === "literal" && typeof pattern.value === "string") {
        const re = ref(env, likeRegex(pattern.value, ci));
        return unary(env, a(), (x) => `${neg}${re}.test(${x})`);
      }
      const like = ref(env, likeRegex);
      return binary(env, a(), b(), (x, y) => `${neg}${like}(${y}, ${ci}).test(${x})`);
    }
    case "in":
    case "not_in": {
      const neg = e.name === "not_in";
      const x = temp(env);
      const list = args.slice(1);
      if (list.every((l) => l.kind === "literal" && l.value !== null)) {
        const set = ref(env, new Set(list.map((l) => (l as { value: unknown }).value)));
        return `((${x} = ${a()}) == null ? null : ${neg ? "!" : ""}${set}.has(${x}))`;
      }
      // General form: true on a match, NULL when no match but a NULL in the list.
      const items = list.map((l) => {
        const y = temp(env);
        return { y, code: gen(l, env) };
      });
      const hit = items.map(({ y, code }) => `(${y} = ${code}) === ${x}`).join(" || ");
      const anyNull = items.map(({ y }) => `${y} == null`).join(" || ");
      const yes = neg ? "false" : "true";
      const no = neg ? "true" : "false";
      return `((${x} = ${a()}) == null ? null : (${hit}) ? ${yes} : (${anyNull}) ? null : ${no})`;
    }
    case "between":
    case "not_between": {
      const neg = e.name === "not_between" ? "!" : "";
      const x = temp(env);
      const lo = temp(env);
      const hi = temp(env);
      return `((${x} = ${a()}) == null || (${lo} = ${b()}) == null || (${hi} = ${gen(args[2]!, env)}) == null ? null : ${neg}(${x} >= ${lo} && ${x} <= ${hi}))`;
    }
    case "->":
    case "->>": {
      const fn = ref(env, jsonArrow);
      return binary(env, a(), b(), (x, y) => `${fn}(${x}, ${y}, ${e.name === "->>"})`);
    }
    case "coalesce": {
      let code = "null";
      for (let i = args.length - 1; i >= 0; i--) {
        const x = temp(env);
        code = `((${x} = ${gen(args[i]!, env)}) != null ? ${x} : ${code})`;
      }
      return code;
    }
    case "nullif": {
      const x = temp(env);
      const y = temp(env);
      return `((${x} = ${a()}) == null ? null : (${y} = ${b()}) != null && ${x} === ${y} ? null : ${x})`;
    }
    case "make_struct": {
      // args alternate: field values, names come from the type.
      if (e.type.kind !== "struct") throw new Error("make_struct needs a struct type");
      const names = e.type.fields.map((f) => JSON.stringify(f.name));
      return `({${args.map((x, i) => `${names[i]}: ${gen(x, env)}`).join(", ")}})`;
    }
  }
  const f = SCALAR_FUNCTIONS.get(e.name);
  if (!f) throw new Error(`no implementation for function ${e.name}`);
  const fn = ref(env, f.impl);
  const codes = args.map((x) => gen(x, env));
  if (f.strict === false || codes.length === 0) return `${fn}(${codes.join(", ")})`;
  const ts = codes.map(() => temp(env));
  return `(${codes.map((c, i) => `(${ts[i]} = ${c}) == null`).join(" || ")} ? null : ${fn}(${ts.join(", ")}))`;
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
  const env: Env = { refs: [], temps: 0 };
  const body = gen(e, env);
  const src = `return function expr(row, time) { ${declareTemps(env)} return ${body}; };`;
  return new Function("H", src)(env.refs) as CompiledExpr;
}

function isIdentity(exprs: Expr[], width: number | undefined): boolean {
  return width === exprs.length && exprs.every((e, i) => e.kind === "column" && e.index === i);
}

/**
 * Compiles filter-then-project over a batch into one loop. `inputWidth`, when
 * given, lets an identity projection pass rows through untouched.
 */
export function compileMap(exprs: Expr[], filter?: Expr, inputWidth?: number): (batch: Batch) => Batch {
  const env: Env = { refs: [], temps: 0 };
  const identity = isIdentity(exprs, inputWidth);
  const filterCode = filter ? gen(filter, env) : null;
  const projection = identity ? "row" : `[${exprs.map((e) => gen(e, env)).join(", ")}]`;
  const src = `return function map(batch) {
    const rows = batch.rows, times = batch.times, n = rows.length;
    const outRows = [], outTimes = [];
    ${declareTemps(env)}
    for (let i = 0; i < n; i++) {
      const row = rows[i], time = times[i];
      ${filterCode ? `if (${filterCode} !== true) continue;` : ""}
      outRows.push(${projection});
      outTimes.push(time);
    }
    return { rows: outRows, times: outTimes };
  };`;
  const appendOnly = new Function("H", src)(env.refs) as (batch: Batch) => Batch;
  if (identity && !filter) return (batch) => batch;

  // Updating streams keep their ops: a filter turns an update whose old or new
  // value no longer qualifies into an insert or a delete.
  const project = exprs.map((e) => compileExpr(e));
  const keep = filter ? compileExpr(filter) : null;
  const apply = (row: Row, time: number): Row => (identity ? row : project.map((p) => p(row, time)));
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
