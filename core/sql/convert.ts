/**
 * node-sql-parser's output → the typed syntax tree (ast.ts), once per query.
 * The parser's tree is untyped and records positions on some nodes only; here
 * each node gets the place it was written in the user's script: the parser's
 * location when it has one (mapped back from the rewritten text), else the
 * name or keyword found in the script's tokens after the nearest located
 * ancestor, else that ancestor's. Constructs no engine supports in any clause
 * (DATE literals, hex strings, AT TIME ZONE...) are refused here, at their place.
 */
import type * as A from "./ast.ts";
import { SqlError } from "./errors.ts";
import { isWord, tokenize } from "./lexer.ts";
import type { RewrittenText } from "./parse.ts";
import { parseTypeTokens, typeFromCastTarget } from "./types.ts";

/** Name of the pseudo-function the rewriter turns `f(...) FILTER (WHERE c)` into a last argument of. */
export const FILTER_MARK = "__runnel_filter";
/** Name of the pseudo-function holding a rewritten call's ORDER BY keys (with `_desc`, `_asc`, `_nulls_first`, `_nulls_last` modifiers after a key). */
export const ORDER_MARK = "__runnel_order";
/** Name of the pseudo-function holding a rewritten call's WITHIN GROUP (ORDER BY ...) keys, with ORDER_MARK's modifiers. */
export const WITHIN_MARK = "__runnel_within";
/** Name of the pseudo-function holding PARTITION BY expressions the grammar takes only as names. */
export const PARTITION_MARK = "__runnel_partition";
/** Prefix of the name a call is renamed to when the grammar cannot parse it as written: `__runnel__d__f` for f(DISTINCT ...). */
export const CALL_MARK = "__runnel__";
/**
 * `RANGE` frames, which the grammar lacks: `ORDER BY t RANGE BETWEEN x PRECEDING
 * AND CURRENT ROW` becomes `ORDER BY t, __runnel_range(__runnel_range_preceding(x),
 * __runnel_range_current())`, a last ORDER BY key the converter takes back off.
 */
export const RANGE_MARK = "__runnel_range";

export function columnName(ast: any): string {
  const c = ast?.column;
  if (typeof c === "string") return c;
  return String(c?.expr?.value ?? c?.value ?? "");
}

function functionName(ast: any): string {
  const parts = ast?.name?.name;
  if (Array.isArray(parts)) return String(parts[parts.length - 1]?.value ?? "").toLowerCase();
  return String(ast?.name ?? "").toLowerCase();
}

function functionArgs(ast: any): any[] {
  const args = ast?.args;
  if (!args) return [];
  if (Array.isArray(args.value)) return args.value;
  if (args.expr) return [args.expr];
  return [];
}

function aliasOf(item: any): string | undefined {
  const as = item?.as;
  if (as === null || as === undefined) return undefined;
  if (typeof as === "string") return as;
  return String(as.value ?? as.expr?.value ?? as);
}

const isSubquery = (x: any) => !!x && typeof x === "object" && (x.type === "select" || (x.ast && typeof x.ast === "object"));
const subqueryAst = (x: any) => (x?.type === "select" ? x : x.ast);

export class Converter {
  constructor(
    private readonly text: RewrittenText,
    /** Where the query starts in the script: the position of last resort. */
    private readonly start: number,
  ) {}

  /** The parser's recorded position of a node, in the user's script. */
  private loc(ast: any): number | null {
    const off = ast?.loc?.start?.offset;
    return typeof off === "number" ? this.text.toOriginal(off) : null;
  }

  /** Where a name or keyword is written, searching the script's tokens from `hint` (the first match when none). */
  locate(name: string, hint: number | null): number | null {
    const lower = name.toLowerCase();
    const tokens = this.text.tokens;
    const match = (tok: (typeof tokens)[number]) =>
      ((tok.kind === "word" || tok.kind === "quoted") && tok.text.toLowerCase() === lower) || (tok.kind === "op" && tok.text === name);
    if (hint !== null) {
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

  private locateNumber(raw: string, hint: number): number {
    return this.text.tokens.find((tok) => tok.kind === "number" && tok.text === raw && tok.start >= hint)?.start ?? hint;
  }

  // ------------------------------------------------------------ queries

  query(ast: any, hint: number = this.start): A.Query {
    const at = hint;
    const ctes: A.Cte[] = [];
    let recursive = false;
    for (const w of ast.with ?? []) {
      if (w.recursive) recursive = true;
      const name = String(w.name?.value ?? w.name);
      const cteAt = this.locate(name, at) ?? at;
      ctes.push({ name, at: cteAt, query: this.query(w.stmt?.ast ?? w.stmt, cteAt) });
    }
    if (ast.with && /^\s*with\s+recursive\b/i.test(this.text.text)) recursive = true;
    let body: A.SetExpr = this.select(ast, at);
    for (let cur = ast; cur._next; cur = cur._next) {
      const raw = String(cur.set_op ?? "union").toLowerCase();
      const word = raw.split(" ")[0]!;
      const op = (word === "minus" ? "except" : word) as "union" | "intersect" | "except";
      const opAt: number = this.locate(word, body.at) ?? body.at;
      const right = this.select(cur._next, opAt);
      body = { kind: "set_operation", at: opAt, op, all: /\ball\b/.test(raw), left: body, right };
    }
    return { kind: "query", at, with: ctes, recursive, body };
  }

  private select(ast: any, hint: number): A.Select {
    if (ast?.type !== "select") throw new SqlError(`expected a SELECT query, found ${String(ast?.type ?? "nothing").toUpperCase()}`, hint);
    const at = this.locate("select", hint) ?? hint;
    const items: A.SelectItem[] = [];
    const columns = ast.columns === "*" ? [{ expr: { type: "column_ref", table: null, column: "*" } }] : (ast.columns ?? []);
    for (const item of columns) {
      const e = item.expr;
      if (e?.type === "column_ref" && columnName(e) === "*") {
        const qualifier = e.table ? String(e.table) : undefined;
        items.push({ kind: "star", at: this.locate(qualifier ?? "*", at) ?? at, qualifier });
        continue;
      }
      const expr = this.expr(e, at);
      items.push({ kind: "expr", at: expr.at, expr, alias: aliasOf(item) });
    }
    const from = ast.from && ast.from.length > 0 ? this.from(ast.from, at) : null;
    const groupBy: any[] = ast.groupby?.columns ?? (Array.isArray(ast.groupby) ? ast.groupby : []);
    const out: A.Select = {
      kind: "select",
      at,
      distinct: !!ast.distinct?.type,
      items,
      from,
      groupBy: groupBy.map((g) => this.expr(g, at)),
    };
    if (ast.where) out.where = this.expr(ast.where, at);
    if (ast.having) {
      out.havingAt = this.locate("having", at) ?? at;
      out.having = this.expr(ast.having, out.havingAt);
    }
    if (out.distinct) out.distinctAt = this.locate("distinct", at) ?? at;
    if (ast.orderby) out.orderByAt = this.locate("order", at) ?? at;
    if (ast.limit?.value?.length) out.limitAt = this.locate("limit", at) ?? at;
    return out;
  }

  private from(list: any[], hint: number): A.FromItem {
    let rel = this.fromItem(list[0], hint);
    for (const item of list.slice(1)) {
      // The right side's name is looked for after its JOIN, so a self-join's second table is found where it is.
      const after = rel.kind === "join" ? rel.right.at : rel.at;
      const right = this.fromItem(item, (item.join ? this.locate("join", after) : null) ?? rel.at);
      const raw = item.join ? String(item.join).toUpperCase() : null;
      let join: A.JoinKind;
      if (raw === null) join = "cross";
      else if (raw === "JOIN" || raw === "INNER JOIN") join = "inner";
      else if (raw.startsWith("LEFT")) join = "left";
      else if (raw.startsWith("RIGHT")) join = "right";
      else if (raw.startsWith("FULL")) join = "full";
      else if (raw.startsWith("CROSS")) join = "cross";
      else throw new SqlError(`${raw} is not supported; write [INNER] JOIN, LEFT, RIGHT or FULL [OUTER] JOIN ... ON`, this.locate("join", rel.at) ?? rel.at);
      // `a CROSS JOIN b` reaches us as table a aliased CROSS, inner-joined to b without ON.
      if (join === "inner" && !item.on && !item.using && rel.kind === "table" && rel.alias?.toUpperCase() === "CROSS") {
        rel = { ...rel, alias: undefined };
        join = "cross";
      }
      const at = raw === null ? right.at : (this.locate(raw.split(" ")[0]!.toLowerCase(), rel.at) ?? right.at);
      const node: A.FromItem = { kind: "join", at, join, left: rel, right, comma: raw === null };
      if (item.on) node.on = this.expr(item.on, at);
      if (item.using) node.using = (item.using as any[]).map((u) => String(u?.value ?? u));
      rel = node;
    }
    return rel;
  }

  private fromItem(item: any, hint: number): A.FromItem {
    if (item.expr?.ast || item.expr?.type === "select") {
      const alias = aliasOf(item);
      const at = (alias ? this.locate("(", hint) : null) ?? hint;
      return { kind: "derived", at, query: this.query(subqueryAst(item.expr), at), alias };
    }
    if (item.type === "expr" && item.expr?.type === "function") {
      const name = functionName(item.expr);
      const at = this.loc(item.expr) ?? this.locate(name, hint) ?? hint;
      if (name !== "unnest") throw new SqlError(`table functions such as ${name}() are not supported in FROM; FROM takes tables, views, subqueries and UNNEST(array)`, at);
      const args = functionArgs(item.expr);
      if (args.length !== 1) throw new SqlError("UNNEST in FROM takes one array: FROM UNNEST(array) AS t (x)", at);
      // `AS u(x)` arrives as the alias text "u(x)".
      const raw = aliasOf(item);
      const m = raw ? /^\s*([^()\s]+)\s*(?:\(\s*([^()\s,]+)\s*\))?\s*$/.exec(raw) : null;
      if (raw && !m) throw new SqlError("write UNNEST(array) AS t (column) with one column", at);
      return { kind: "unnest", at, expr: this.expr(args[0], at), alias: m?.[1], column: m?.[2] };
    }
    const name = String(item.table);
    const at = this.locate(name, hint) ?? hint;
    const out: A.FromItem = { kind: "table", at, name, alias: aliasOf(item) };
    const asOf = this.text.asOf.get(at);
    if (asOf) {
      asOf.attached = true;
      out.asOf = asOf;
    }
    return out;
  }

  // ------------------------------------------------------------ expressions

  expr(ast: any, hint: number): A.Expr {
    const own = this.loc(ast);
    const e = this.exprNode(ast, own ?? hint);
    let out = e;
    // `a[1]`, `m['k']`, `f(x)[2]`.
    for (const step of ast?.array_index ?? []) {
      out = { kind: "index", at: out.at, expr: out, index: this.expr(step.index, out.at) };
    }
    return out;
  }

  private exprNode(ast: any, hint: number): A.Expr {
    const at = this.loc(ast) ?? hint;
    const sub = (x: any) => this.expr(x, at);
    if (isSubquery(ast)) {
      const where = this.locate("select", at) ?? at;
      return { kind: "subquery", at: where, query: this.query(subqueryAst(ast), where) };
    }
    switch (ast?.type) {
      case "column_ref": {
        const name = columnName(ast);
        const parts = [ast.schema, ast.table, name].filter((p) => p !== null && p !== undefined && p !== "").map(String);
        const where = this.locate(parts[0]!, hint) ?? hint;
        if (name === "*") return { kind: "star", at: where, qualifier: ast.table ? String(ast.table) : undefined };
        if (ast.options || ast.collate) {
          const what = ast.collate ? "COLLATE" : String(ast.options?.value?.[0]?.value ?? "this clause").toUpperCase();
          const fix = what === "AT TIME ZONE" ? "TIMESTAMP values are UTC and carry no zone; remove AT TIME ZONE" : "remove it";
          throw new SqlError(`${what} is not supported: ${fix}`, this.locate(name, hint) ?? hint);
        }
        const partAt = [where];
        for (const p of parts.slice(1)) partAt.push(this.locate(p, partAt[partAt.length - 1]! + 1) ?? where);
        return { kind: "column", at: where, parts, partAt };
      }
      case "double_quote_string": {
        const where = this.locate(String(ast.value), hint) ?? hint;
        return { kind: "column", at: where, parts: [String(ast.value)], partAt: [where] };
      }
      case "number":
      case "bigint": {
        const text = String(ast.value);
        return { kind: "number", at: this.loc(ast) ?? this.locateNumber(text, hint), text };
      }
      case "single_quote_string":
      case "string":
      case "natural_string":
      case "regex_string":
      case "var_string":
        return { kind: "string", at, value: String(ast.value) };
      case "hex_string":
      case "full_hex_string":
      case "bit_string":
        throw new SqlError("hex and bit string literals are not supported; write decode('ff', 'hex')", at);
      case "bool":
        return { kind: "boolean", at, value: Boolean(ast.value) };
      case "null":
        return { kind: "null", at };
      case "timestamp":
        return { kind: "timestamp", at: this.locate("timestamp", hint) ?? at, value: String(ast.value) };
      case "date":
        throw new SqlError(`Runnel has no DATE type; write TIMESTAMP '${ast.value} 00:00:00' (midnight UTC) or the text '${ast.value}'`, at);
      case "time":
        throw new SqlError("Runnel has no TIME type; compare to_char(ts, '%H:%M:%S') with text", at);
      case "interval":
        return { kind: "interval", at: this.loc(ast.expr) ?? this.locate("interval", hint) ?? at, value: String(ast.expr?.value ?? ""), unit: String(ast.unit ?? "") };
      case "array":
        return { kind: "array", at: this.locate("array", hint) ?? at, items: (ast.expr_list?.value ?? []).map(sub) };
      case "expr_list": {
        const items = ast.value ?? [];
        if (items.length === 1) return this.expr(items[0], hint);
        throw new SqlError("a list of values is only allowed after IN", at);
      }
      case "unary_expr": {
        const op = String(ast.operator).toUpperCase();
        const e = sub(ast.expr);
        if (op === "NOT") return { kind: "unary", at, op: "not", expr: e };
        if (op === "-" || op === "+") return { kind: "unary", at, op, expr: e };
        if ((op === "NOT EXISTS" || op === "EXISTS") && e.kind === "subquery") return { kind: "exists", at: this.locate(op === "EXISTS" ? "exists" : "not", at) ?? at, not: op === "NOT EXISTS", query: e.query };
        throw new SqlError(`operator ${ast.operator} is not supported${op === "~" ? " (bitwise operators are not available)" : ""}`, at);
      }
      case "binary_expr":
        return this.binary(ast, at);
      case "case": {
        const operand = ast.expr ? sub(ast.expr) : undefined;
        const whens: { when: A.Expr; then: A.Expr; at: number }[] = [];
        let otherwise: A.Expr | undefined;
        for (const arm of ast.args ?? []) {
          if (arm.type === "when") {
            const when = sub(arm.cond);
            whens.push({ when, then: sub(arm.result), at: this.loc(arm.cond) ?? when.at });
          } else otherwise = sub(arm.result);
        }
        return { kind: "case", at: this.locate("case", hint) ?? at, operand, whens, otherwise };
      }
      case "cast":
        return this.cast(ast, at);
      case "extract": {
        const field = String(ast.args?.field ?? "").toLowerCase();
        const castType = ast.args?.cast_type;
        // EXTRACT(f FROM TIMESTAMP '...') arrives as the string plus a cast_type.
        const source = castType ? this.cast({ type: "cast", keyword: "cast", symbol: "::", expr: ast.args?.source, target: [{ dataType: castType }] }, at) : sub(ast.args?.source);
        return { kind: "extract", at, field, source };
      }
      case "function":
        return this.func(ast, at, hint);
      case "aggr_func":
        return this.aggregate(ast, at, hint);
      case "window_func":
        return this.windowFunc(ast, at, hint);
      case "param":
      case "var":
        throw new SqlError("query parameters ($1, :name) are not supported; write the value", at);
      case "origin":
        throw new SqlError(`unexpected ${String(ast.value).toUpperCase()} here`, this.locate(String(ast.value), hint) ?? at);
      default:
        throw new SqlError(`this expression${ast?.type ? ` (${ast.type})` : ""} is not supported by Runnel`, at);
    }
  }

  private binary(ast: any, at: number): A.Expr {
    const op = String(ast.operator).toUpperCase();
    const left = this.expr(ast.left, at);
    const rightHint = Math.max(at, left.at + 1);
    const right = () => this.expr(ast.right, rightHint);
    switch (op) {
      case "IN":
      case "NOT IN": {
        const list = ast.right?.type === "expr_list" ? ast.right.value : null;
        if (list && list.length === 1 && isSubquery(list[0])) {
          return { kind: "in_subquery", at, not: op === "NOT IN", expr: left, query: this.query(subqueryAst(list[0]), at) };
        }
        if (!list) throw new SqlError(`${op} needs a list of values or a subquery: x IN (1, 2)`, at);
        return { kind: "in_list", at, not: op === "NOT IN", expr: left, list: list.map((x: any) => this.expr(x, rightHint)) };
      }
      case "BETWEEN":
      case "NOT BETWEEN": {
        const [lo, hi] = ast.right?.value ?? [];
        if (!lo || !hi) throw new SqlError(`${op} needs two bounds: x BETWEEN low AND high`, at);
        return { kind: "between", at, not: op === "NOT BETWEEN", expr: left, low: this.expr(lo, rightHint), high: this.expr(hi, rightHint) };
      }
      case "LIKE":
      case "NOT LIKE":
      case "ILIKE":
      case "NOT ILIKE": {
        const escape = ast.right?.escape?.value;
        return {
          kind: "like",
          at,
          not: op.startsWith("NOT"),
          caseInsensitive: op.endsWith("ILIKE"),
          expr: left,
          pattern: right(),
          ...(escape ? { escape: this.expr(escape, rightHint) } : {}),
        };
      }
      case "SIMILAR TO":
      case "NOT SIMILAR TO":
        // The rewriter turns IS [NOT] DISTINCT FROM into these (node-sql-parser cannot parse it); SIMILAR TO itself is refused there.
        return { kind: "binary", at, op: op === "SIMILAR TO" ? "is distinct from" : "is not distinct from", left, right: right() };
      case "IS":
      case "IS NOT": {
        const r = ast.right;
        const not = op === "IS NOT";
        if (r?.type === "null") return { kind: "is", at, not, expr: left, test: "null" };
        if (r?.type === "bool") return { kind: "is", at, not, expr: left, test: r.value ? "true" : "false" };
        if (r?.type === "column_ref" && columnName(r).toUpperCase() === "UNKNOWN" && !r.table) return { kind: "is", at, not, expr: left, test: "unknown" };
        throw new SqlError(`${op} must be followed by NULL, TRUE, FALSE, UNKNOWN or DISTINCT FROM`, at);
      }
      case "AND":
      case "OR":
      case "=":
      case "<>":
      case "<":
      case "<=":
      case ">":
      case ">=":
      case "+":
      case "-":
      case "*":
      case "/":
      case "%":
      case "||":
      case "->":
      case "->>":
      case "?":
      case "~":
      case "~*":
      case "!~":
      case "!~*":
        return { kind: "binary", at, op: op.toLowerCase(), left, right: right() };
      case "!=":
        return { kind: "binary", at, op: "<>", left, right: right() };
    }
    throw new SqlError(`operator ${ast.operator} is not supported`, at);
  }

  private cast(ast: any, at: number): A.Expr {
    const target = Array.isArray(ast.target) ? ast.target[0] : ast.target;
    const name = String(target?.dataType ?? "").toLowerCase();
    const where = ast.symbol !== "::" ? (this.locate("cast", at) ?? at) : (this.loc(ast.expr) ?? this.locate("::", at) ?? at);
    if (name === "date") {
      throw new SqlError(
        "Runnel has no DATE type, so CAST(... AS DATE) would keep the time of day; write date_trunc('day', ts) for midnight (a TIMESTAMP) " +
          "or to_char(ts, '%Y-%m-%d') for the date as text",
        where,
      );
    }
    if (target?.array || name.endsWith("[]")) throw new SqlError("casts to array types are not supported", where);
    const type = typeFromCastTarget(target, where);
    return { kind: "cast", at: where, expr: this.expr(ast.expr, where), type, safe: false };
  }

  private orderItems(list: any[] | null | undefined, hint: number): A.OrderItem[] | undefined {
    if (!list) return undefined;
    return list.map((o: any) => {
      const expr = this.expr(o.expr, hint);
      const nulls = o.nulls ? String(o.nulls).toUpperCase() : "";
      return {
        at: expr.at,
        expr,
        desc: String(o.type ?? "").toUpperCase() === "DESC",
        ...(nulls.includes("FIRST") ? { nullsFirst: true } : nulls.includes("LAST") ? { nullsFirst: false } : {}),
      };
    });
  }

  private frameBound(raw: any, at: number): A.FrameBound {
    const text = String(raw?.value ?? "").trim().toLowerCase().replace(/\s+/g, " ");
    if (text === "current row") return { kind: "current", offset: null };
    const m = /^(unbounded|\d+) (preceding|following)$/.exec(text);
    if (!m) throw new SqlError(`cannot read the window frame bound '${text}'; write n PRECEDING, CURRENT ROW or UNBOUNDED FOLLOWING`, at);
    return { kind: m[2] as "preceding" | "following", offset: m[1] === "unbounded" ? null : Number(m[1]) };
  }

  private windowSpec(over: any, hint: number): A.WindowSpec {
    const spec = over?.as_window_specification?.window_specification;
    if (!spec) throw new SqlError("named windows (OVER w, WINDOW w AS ...) are not supported; write the window in OVER (...)", hint);
    const out: A.WindowSpec = {
      at: this.locate("over", hint) ?? hint,
      partitionBy: (spec.partitionby ?? []).flatMap((p: any) => {
        const e = p.expr ?? p;
        return e?.type === "function" && functionName(e) === PARTITION_MARK ? functionArgs(e).map((x) => this.expr(x, hint)) : [this.expr(e, hint)];
      }),
      orderBy: [],
    };
    let orderby: any[] = spec.orderby ?? [];
    const range = orderby[orderby.length - 1]?.expr;
    if (range?.type === "function" && functionName(range) === RANGE_MARK) {
      orderby = orderby.slice(0, -1);
      const at = this.locate("range", hint) ?? hint;
      const bounds = functionArgs(range).map((b: any): A.FrameBound => {
        const kind = functionName(b).slice(RANGE_MARK.length + 1);
        if (kind === "current") return { kind: "current", offset: null };
        if (kind.startsWith("unbounded_")) return { kind: kind.slice(10) as "preceding" | "following", offset: null };
        const offset = this.expr(functionArgs(b)[0], at);
        return { kind: kind as "preceding" | "following", offset: null, offsetExpr: offset };
      });
      out.frame = { units: "range", start: bounds[0]!, end: bounds[1] ?? { kind: "current", offset: null }, at };
    }
    out.orderBy = this.orderItems(orderby, hint) ?? [];
    const frame = spec.window_frame_clause;
    if (frame) {
      const at = this.loc(frame) ?? hint;
      const units = String(frame.left?.value ?? frame.value ?? "").toLowerCase();
      if (frame.type === "binary_expr" && String(frame.operator).toUpperCase() === "BETWEEN" && (units === "rows" || units === "range")) {
        const [a, b] = frame.right?.value ?? [];
        out.frame = { units, start: this.frameBound(a, at), end: this.frameBound(b, at), at };
      } else {
        // `ROWS 10 PRECEDING`: from there to the current row.
        const m = /^(rows|range)\s+(.*)$/i.exec(String(frame.value ?? frame.raw ?? ""));
        if (!m) throw new SqlError("write the window frame as ROWS BETWEEN n PRECEDING AND CURRENT ROW", at);
        out.frame = { units: m[1]!.toLowerCase() as "rows" | "range", start: this.frameBound({ value: m[2] }, at), end: { kind: "current", offset: null }, at };
      }
    }
    return out;
  }

  /** Splits off the rewriter's FILTER and ORDER BY markers (the last arguments) from a call's arguments. */
  private markers(argAsts: any[], at: number): { args: any[]; filter?: A.Expr; orderBy?: A.OrderItem[]; withinGroup?: A.OrderItem[] } {
    let args = argAsts;
    let filter: A.Expr | undefined;
    const isMark = (x: any, name: string) => x?.type === "function" && functionName(x) === name;
    if (isMark(args[args.length - 1], FILTER_MARK)) {
      filter = this.expr(functionArgs(args[args.length - 1])[0], at);
      args = args.slice(0, -1);
    }
    const keys = (mark: string): A.OrderItem[] | undefined => {
      if (!isMark(args[args.length - 1], mark)) return undefined;
      const out: A.OrderItem[] = [];
      for (const k of functionArgs(args[args.length - 1])) {
        const mod = k?.type === "function" ? functionName(k) : "";
        const last = out[out.length - 1];
        if (mod === `${ORDER_MARK}_desc` && last) last.desc = true;
        else if (mod === `${ORDER_MARK}_asc` && last) last.desc = false;
        else if (mod === `${ORDER_MARK}_nulls_first` && last) last.nullsFirst = true;
        else if (mod === `${ORDER_MARK}_nulls_last` && last) last.nullsFirst = false;
        else {
          const expr = this.expr(k, at);
          out.push({ at: expr.at, expr, desc: false });
        }
      }
      args = args.slice(0, -1);
      return out;
    };
    const withinGroup = keys(WITHIN_MARK);
    const orderBy = keys(ORDER_MARK);
    return { args, filter, orderBy, withinGroup };
  }

  /** The real name and DISTINCT of a call the rewriter renamed (`__runnel__d__sum` → sum, DISTINCT). */
  private unmark(name: string): { name: string; distinct: boolean } | null {
    if (!name.startsWith(CALL_MARK)) return null;
    const rest = name.slice(CALL_MARK.length);
    const sep = rest.indexOf("__");
    return { name: rest.slice(sep + 2), distinct: rest.slice(0, sep).includes("d") };
  }

  private func(ast: any, at: number, hint: number): A.Expr {
    const unmarked = this.unmark(functionName(ast));
    const name = unmarked?.name ?? functionName(ast);
    const where = this.loc(ast) ?? this.locate(name, hint) ?? at;
    const marked = this.markers(functionArgs(ast), where);
    const argAsts = marked.args;
    const isKeyword = (x: any, ...words: string[]) => x?.type === "origin" && words.includes(String(x.value).toUpperCase());
    const sub = (x: any) => this.expr(x, where);
    // TRIM([BOTH | LEADING | TRAILING] [chars] FROM s) and POSITION(a IN b): keywords among the arguments.
    if (name === "trim" && argAsts.some((x) => isKeyword(x, "BOTH", "LEADING", "TRAILING", "FROM"))) {
      let i = 0;
      let side = "BOTH";
      if (isKeyword(argAsts[0], "BOTH", "LEADING", "TRAILING")) side = String(argAsts[i++].value).toUpperCase();
      const fromAt = argAsts.findIndex((x) => isKeyword(x, "FROM"));
      if (fromAt < 0 || fromAt !== argAsts.length - 2) throw new SqlError("write TRIM([BOTH | LEADING | TRAILING] [characters] FROM text)", where);
      const chars = fromAt > i ? sub(argAsts[i]) : undefined;
      const s = sub(argAsts[fromAt + 1]);
      const fn = side === "LEADING" ? "ltrim" : side === "TRAILING" ? "rtrim" : "btrim";
      return this.call(fn, where, chars ? [s, chars] : [s]);
    }
    if (name === "position" && isKeyword(argAsts[1], "IN")) {
      return this.call("strpos", where, [sub(argAsts[2]), sub(argAsts[0])]);
    }
    if (name === "try_cast") {
      // TRY_CAST(x AS type) was rewritten to try_cast(x, 'type') for the parser.
      const typeText = argAsts[1]?.value;
      if (argAsts.length !== 2 || typeof typeText !== "string") throw new SqlError("write TRY_CAST(value AS type)", where);
      const tokens = tokenize(typeText);
      if (tokens.length === 0) throw new SqlError("TRY_CAST needs a type: TRY_CAST(value AS BIGINT)", where);
      if (isWord(tokens[0], "date")) throw new SqlError("Runnel has no DATE type; write date_trunc('day', ts) or to_char(ts, '%Y-%m-%d')", where);
      const parsed = parseTypeTokens(tokens, 0);
      if (parsed.next !== tokens.length) throw new SqlError(`cannot read type '${typeText}' in TRY_CAST`, where);
      return { kind: "cast", at: where, expr: sub(argAsts[0]), type: parsed.type, safe: true };
    }
    // `NOT (x IN (SELECT ...))` reaches here as a call; as the operator, the planner sees the NOT IN it is.
    if (name === "not" && argAsts.length === 1 && !ast.over) return { kind: "unary", at: where, op: "not", expr: sub(argAsts[0]) };
    if (name === "exists" && argAsts.length === 1 && isSubquery(argAsts[0])) {
      return { kind: "exists", at: where, not: false, query: this.query(subqueryAst(argAsts[0]), where) };
    }
    const star = argAsts.length === 1 && (argAsts[0]?.type === "star" || (argAsts[0]?.type === "column_ref" && columnName(argAsts[0]) === "*"));
    const args = star ? [] : argAsts.map(sub);
    const out: A.Expr = { kind: "call", at: where, name, args, star, distinct: unmarked?.distinct ?? false };
    if (marked.filter) out.filter = marked.filter;
    if (marked.orderBy) out.orderBy = marked.orderBy;
    if (marked.withinGroup) out.withinGroup = marked.withinGroup;
    if (ast.over) out.over = this.windowSpec(ast.over, where);
    return out;
  }

  private call(name: string, at: number, args: A.Expr[]): A.Expr {
    return { kind: "call", at, name, args, star: false, distinct: false };
  }

  private aggregate(ast: any, at: number, hint: number): A.Expr {
    const name = String(ast.name).toLowerCase();
    const where = this.loc(ast) ?? this.locate(name, hint) ?? at;
    const a = ast.args ?? {};
    let argAsts: any[] = a.expr ? [a.expr] : (a.value ?? []);
    if (a.expr?.type === "expr_list") argAsts = a.expr.value ?? [];
    const marked = this.markers(argAsts, where);
    argAsts = marked.args;
    const star = argAsts.length === 1 && (argAsts[0]?.type === "star" || (argAsts[0]?.type === "column_ref" && columnName(argAsts[0]) === "*"));
    const args = star ? [] : argAsts.map((x) => this.expr(x, where));
    // string_agg(s, ',') keeps its separator apart.
    const sep = a.separator?.delimiter ?? (typeof a.separator === "object" ? a.separator?.value : undefined);
    if (sep && typeof sep === "object") args.push(this.expr(sep, where));
    const out: A.Expr = {
      kind: "call",
      at: where,
      name,
      args,
      star,
      distinct: String(a.distinct ?? "").toUpperCase() === "DISTINCT",
    };
    const filter = ast.filter?.where ? this.expr(ast.filter.where, where) : marked.filter;
    if (filter) out.filter = filter;
    const orderBy = this.orderItems(a.orderby, where);
    if (orderBy) out.orderBy = orderBy;
    const within = this.orderItems(ast.within_group_orderby, where);
    if (within) out.withinGroup = within;
    if (ast.over) out.over = this.windowSpec(ast.over, where);
    return out;
  }

  private windowFunc(ast: any, at: number, hint: number): A.Expr {
    const name = String(ast.name).toLowerCase();
    const argAsts = functionArgs(ast);
    const inner = argAsts[0];
    if (name === "first_value" && argAsts.length === 1 && inner?.type === "function" && this.unmark(functionName(inner))) {
      // A call the rewriter wrapped in first_value(...) so that its OVER parses.
      const call = this.func(inner, at, hint);
      if (call.kind === "call" && ast.over) call.over = this.windowSpec(ast.over, call.at);
      return call;
    }
    const where = this.loc(ast) ?? this.locate(name, hint) ?? at;
    const args = argAsts.map((x) => this.expr(x, where));
    const out: A.Expr = { kind: "call", at: where, name, args, star: false, distinct: false };
    if (ast.over) out.over = this.windowSpec(ast.over, where);
    const nulls = String(ast.consider_nulls ?? "").toUpperCase();
    if (nulls.includes("IGNORE")) out.ignoreNulls = true;
    return out;
  }
}
