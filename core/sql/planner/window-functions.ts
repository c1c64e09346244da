/**
 * Window functions: `f(...) OVER (PARTITION BY ... ORDER BY ... [frame])` in a
 * SELECT without GROUP BY (DataFusion's select.rs plans them after aggregates;
 * Runnel asks for the aggregate in a subquery). A partition holding the time
 * window of a windowed aggregate is finite and complete at a known watermark,
 * so the result appends; any other partition never ends, and the result updates
 * (deletes and inserts as partitions change). `WHERE rn <= N` over the result is
 * planned as a top-N (see pushTopN).
 */
import { t, typeName, type Field } from "../../plugin-api/index.ts";
import type { Expr } from "../../expr/expr.ts";
import type { LogicalPipeline, PlanNode, SortKey, WindowFrame, WindowFunctionCall } from "../../plan/logical.ts";
import { consumerCounts, rewritePlan } from "../../plan/rewrite.ts";
import { accepts } from "../../expr/functions.ts";
import { AGGREGATE_FUNCTIONS } from "../../expr/aggregates.ts";
import { walkExpr, type Expr as AstExpr, type Select, type WindowSpec as AstWindowSpec } from "../ast.ts";
import { didYouMean, SqlError } from "../errors.ts";
import { BUILTIN_AGGREGATE_NAMES, exprKey, resolveExpr, type Scope, type ScopeColumn } from "../expressions.ts";
import { and, columnsUsed, exprContext, fieldsOf, filterNode, mapColumns, mapNode, type QueryPlanner, type Rel } from "./context.ts";
import { aggregateCall } from "./aggregates.ts";
import { windowColumnOf } from "./joins.ts";
import { expandItems, resolveWhere } from "./select.ts";
import { isNumeric } from "../types.ts";

type Call = Extract<AstExpr, { kind: "call" }>;

const RANKING = new Set(["row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile"]);
const NAVIGATION = new Set(["lag", "lead", "first_value", "last_value", "nth_value"]);

/** The OVER calls of an expression (not inside subqueries). */
export function overCalls(e: AstExpr): Call[] {
  const out: Call[] = [];
  walkExpr(e, (n) => {
    if (n.kind === "subquery" || n.kind === "exists") return false;
    if (n.kind === "call" && n.over) {
      out.push(n);
      return false;
    }
  });
  return out;
}

const DEFAULT_FRAME: WindowFrame = { units: "range", start: { kind: "preceding", offset: null }, end: { kind: "current", offset: null } };

function frameOf(p: QueryPlanner, spec: AstWindowSpec, scope: Scope): WindowFrame {
  const f = spec.frame;
  if (!f) return DEFAULT_FRAME;
  if (f.start.kind === "following" && f.start.offset === null && !f.start.offsetExpr) throw new SqlError("a frame cannot start at UNBOUNDED FOLLOWING", f.at);
  if (f.end.kind === "preceding" && f.end.offset === null && !f.end.offsetExpr) throw new SqlError("a frame cannot end at UNBOUNDED PRECEDING", f.at);
  const bound = (b: typeof f.start) => ({ kind: b.kind, offset: b.kind === "current" ? null : b.offset });
  if (f.units === "rows" || !(f.start.offsetExpr || f.end.offsetExpr)) return { units: f.units, start: bound(f.start), end: bound(f.end) };
  // RANGE with an offset (DataFusion's rules): one ORDER BY key, numeric with a numeric offset or a timestamp with an interval.
  if (spec.orderBy.length !== 1) {
    throw new SqlError(`a RANGE frame with an offset needs exactly one ORDER BY key (this OVER has ${spec.orderBy.length}); order by one column, or write ROWS BETWEEN n PRECEDING AND ...`, f.at);
  }
  const key = resolveExpr(spec.orderBy[0]!.expr, scope, exprContext(p, "OVER (ORDER BY ...)"));
  const timestamp = key.type.kind === "timestamp";
  if (!timestamp && !isNumeric(key.type)) {
    throw new SqlError(`a RANGE frame with an offset orders by a number or a timestamp, not ${typeName(key.type)}; write ROWS BETWEEN n PRECEDING AND ... to count rows`, spec.orderBy[0]!.at);
  }
  const offset = (b: typeof f.start) => {
    if (!b.offsetExpr) return bound(b);
    const e = resolveExpr(b.offsetExpr, scope, exprContext(p, "a RANGE frame"));
    const want = timestamp ? "an INTERVAL (the key is a TIMESTAMP): INTERVAL '1' MINUTE" : "a number (the key is a number)";
    const fits = e.kind === "literal" && typeof e.value === "number" && (timestamp ? e.type.kind === "interval" : isNumeric(e.type));
    if (!fits) throw new SqlError(`the offset of this RANGE frame must be a constant, ${want}`, b.offsetExpr.at);
    const value = (e as { value: number }).value;
    if (!(value >= 0)) throw new SqlError("the offset of a RANGE frame cannot be negative; write FOLLOWING for the other direction", b.offsetExpr.at);
    return { kind: b.kind, offset: value };
  };
  return { units: "range", start: offset(f.start), end: offset(f.end) };
}

function constantInt(p: QueryPlanner, e: AstExpr, scope: Scope, what: string, min: number): number {
  const r = resolveExpr(e, scope, exprContext(p, what));
  if (r.kind !== "literal" || r.type.kind !== "int" || typeof r.value !== "number" || r.value < min) {
    throw new SqlError(`${what} must be a constant integer ≥ ${min}`, e.at);
  }
  return r.value;
}

/** One OVER call, resolved against the input. */
function windowFunctionCall(p: QueryPlanner, c: Call, scope: Scope): WindowFunctionCall {
  const name = c.name;
  const at = c.at;
  const ignoreNulls = c.ignoreNulls ? { ignoreNulls: true } : {};
  const ctx = exprContext(p, `the arguments of ${name}()`);
  const arity = (min: number, max: number) => {
    if (c.args.length < min || c.args.length > max) throw new SqlError(`${name}() takes ${min === max ? min : `${min} to ${max}`} argument(s), got ${c.args.length}`, at);
  };
  if (RANKING.has(name)) {
    if (name === "ntile") {
      arity(1, 1);
      return { fn: "ntile", buckets: constantInt(p, c.args[0]!, scope, "the number of buckets of ntile()", 1), type: t.bigint() };
    }
    arity(0, 0);
    const fn = name as "row_number" | "rank" | "dense_rank" | "percent_rank" | "cume_dist";
    return { fn, type: fn === "percent_rank" || fn === "cume_dist" ? t.double() : t.bigint() };
  }
  if (NAVIGATION.has(name)) {
    if (c.distinct || c.filter || c.orderBy) throw new SqlError(`${name}() takes no DISTINCT, FILTER or ORDER BY inside its parentheses; order in OVER (ORDER BY ...)`, at);
    const arg = () => resolveExpr(c.args[0]!, scope, ctx);
    if (name === "lag" || name === "lead") {
      arity(1, 3);
      const value = arg();
      const offset = c.args[1] ? constantInt(p, c.args[1], scope, `the offset of ${name}()`, 0) : 1;
      let fallback: Expr | undefined;
      if (c.args[2]) {
        fallback = resolveExpr(c.args[2], scope, ctx);
        const isNull = fallback.kind === "literal" && fallback.value === null;
        if (!isNull && !accepts(value.type.kind === "int" || value.type.kind === "float" ? "number" : "any", fallback.type)) {
          throw new SqlError(`the default of ${name}() must have the type of its value (${typeName(value.type)}), got ${typeName(fallback.type)}`, c.args[2].at);
        }
        if (!isNull && fallback.type.kind !== value.type.kind && !(value.type.kind === "float" && fallback.type.kind === "int")) {
          throw new SqlError(`the default of ${name}() must have the type of its value (${typeName(value.type)}), got ${typeName(fallback.type)}; cast it`, c.args[2].at);
        }
      }
      return { fn: name, arg: value, offset, fallback, ...ignoreNulls, type: value.type };
    }
    const frame = frameOf(p, c.over!, scope);
    if (name === "nth_value") {
      arity(2, 2);
      const value = arg();
      return { fn: "nth_value", arg: value, n: constantInt(p, c.args[1]!, scope, "the position of nth_value()", 1), frame, ...ignoreNulls, type: value.type };
    }
    arity(1, 1);
    const value = arg();
    return { fn: name as "first_value" | "last_value", arg: value, frame, ...ignoreNulls, type: value.type };
  }
  if (BUILTIN_AGGREGATE_NAMES.has(name) || AGGREGATE_FUNCTIONS.has(name) || p.registry.udaf(name)) {
    const call = aggregateCall(p, { ...c, over: undefined }, scope);
    return { fn: "aggregate", call, frame: frameOf(p, c.over!, scope), type: call.type };
  }
  const known = [...RANKING, ...NAVIGATION, ...BUILTIN_AGGREGATE_NAMES, ...AGGREGATE_FUNCTIONS.keys()];
  throw new SqlError(`${name}() cannot be used with OVER${didYouMean(name, known)}; window functions are ${[...RANKING, ...NAVIGATION].join(", ")} and the aggregates`, at);
}

function specKey(p: QueryPlanner, spec: AstWindowSpec, scope: Scope): string {
  const ctx = exprContext(p, "OVER (...)");
  return JSON.stringify([spec.partitionBy.map((e) => exprKey(resolveExpr(e, scope, ctx))), spec.orderBy.map((o) => [exprKey(resolveExpr(o.expr, scope, ctx)), o.desc, o.nullsFirst ?? null])]);
}

/** A SELECT with window functions (no GROUP BY): FROM, WHERE, one operator per window specification, then the projection. */
export function planWindowFunctions(p: QueryPlanner, select: Select, inputIn: Rel, calls: Call[]): Rel {
  let input = inputIn;
  if (select.where) input = { node: filterNode(input.node, input.scope, resolveWhere(p, select.where, input.scope)), scope: input.scope };
  const scope = input.scope;
  // Calls by window specification: each specification sorts its partitions once, in its own operator.
  const groups = new Map<string, Call[]>();
  for (const c of calls) {
    const k = specKey(p, c.over!, scope);
    groups.set(k, [...(groups.get(k) ?? []), c]);
  }
  let node = input.node;
  const fields: Field[] = fieldsOf(scope);
  const extra: ScopeColumn[] = [];
  const slot = new Map<Call, number>();
  for (const group of groups.values()) {
    const spec = group[0]!.over!;
    const ctx = exprContext(p, "PARTITION BY");
    const partition = spec.partitionBy.map((e) => resolveExpr(e, scope, ctx));
    // Partitions holding the time window end with it; others never end, and their results update.
    const updating = node.updating || !holdsWindow(node, partition);
    const order: SortKey[] = spec.orderBy.map((o) => ({ expr: resolveExpr(o.expr, scope, exprContext(p, "ORDER BY")), desc: o.desc, nullsFirst: o.nullsFirst ?? o.desc }));
    // Identical calls are computed once.
    const functions: WindowFunctionCall[] = [];
    const byText = new Map<string, number>();
    for (const c of group) {
      const f = windowFunctionCall(p, c, scope);
      const k = JSON.stringify(f, (_k, v) => (typeof v === "function" ? String(v) : v));
      if (!byText.has(k)) {
        byText.set(k, functions.length);
        functions.push(f);
        fields.push({ name: `${f.fn}_${fields.length}`, type: f.type, nullable: true });
        extra.push({ name: `\u0000window_fn${fields.length}`, type: f.type, nullable: true });
      }
      slot.set(c, fields.length - functions.length + byText.get(k)!);
    }
    node = { kind: "window_function", input: node, partition, order, functions, schema: { fields: fields.slice() }, updating };
  }

  const extended: Scope = { columns: [...scope.columns, ...extra], label: scope.label };
  const hook = (x: AstExpr): Expr | undefined => {
    if (x.kind !== "call" || !x.over) return undefined;
    const i = slot.get(x)!;
    return { kind: "column", index: i, name: fields[i]!.name, type: fields[i]!.type };
  };
  const selectCtx = exprContext(p, "the SELECT list", hook);
  const selected = expandItems(select.items, scope);
  const exprs = selected.map((s): Expr => (s.direct !== undefined ? { kind: "column", index: s.direct, name: s.name, type: scope.columns[s.direct]!.type } : resolveExpr(s.ast!, extended, selectCtx)));
  const columns: ScopeColumn[] = selected.map((s, i) => ({
    name: s.name,
    type: exprs[i]!.type,
    nullable: s.direct !== undefined ? scope.columns[s.direct]!.nullable : true,
  }));
  const outScope: Scope = { columns, label: "the query" };
  return { node: mapNode(node, exprs, undefined, fieldsOf(outScope)), scope: outScope };
}

/** Whether a partition holds the time window: then its rows share one event time and it is complete when the watermark passes it. */
function holdsWindow(node: PlanNode, partition: Expr[]): boolean {
  const window = windowColumnOf(node);
  if (!window) return false;
  const isWindow = (e: Expr): boolean =>
    (e.kind === "column" && e.index === window.index) || (e.kind === "field" && e.name === "end" && isWindow(e.expr)) ||
    (e.kind === "field" && e.name === "start" && window.spec.kind !== "session" && isWindow(e.expr));
  return partition.some(isWindow);
}

/**
 * `WHERE rn <= N` (or `rn < N`, `rn = 1`) over a ranking function's column: the
 * window function node below keeps only rows ranked within N, so its state per
 * partition is bounded by N. Every row it emits then meets the condition, so the
 * conjunct leaves the filter (q18's deduplication had a map testing each output
 * row against a bound it could not fail). Returns the input with the limit set
 * (new nodes, as plan nodes may be shared) and what is left of the filter.
 */
export function pushTopN(node: PlanNode, filter: Expr): { node: PlanNode; filter: Expr | undefined } {
  const conjuncts: Expr[] = [];
  const split = (e: Expr) => (e.kind === "call" && e.name === "and" ? e.args.forEach(split) : conjuncts.push(e));
  split(filter);
  let out = node;
  const left: Expr[] = [];
  for (const c of conjuncts) {
    const limited = topNOf(out, c);
    if (limited) out = limited;
    else left.push(c);
  }
  if (left.length === conjuncts.length) return { node, filter };
  return { node: out, filter: left.length === 0 ? undefined : and(left) };
}

/** `node` with the limit conjunct `c` sets (or already had), or null when `c` is not a bound on a ranking column. */
function topNOf(node: PlanNode, c: Expr): PlanNode | null {
  if (c.kind !== "call" || c.args.length !== 2) return null;
  let [a, b] = c.args as [Expr, Expr];
  let op = c.name;
  if (a.kind === "literal") {
    [a, b] = [b, a];
    op = ({ ">=": "<=", ">": "<", "=": "=" } as Record<string, string>)[op] ?? "";
  }
  if (a.kind !== "column" || b.kind !== "literal" || typeof b.value !== "number") return null;
  const n = op === "<=" ? Math.floor(b.value) : op === "<" ? Math.ceil(b.value) - 1 : op === "=" && b.value === 1 ? 1 : NaN;
  if (!(n >= 1)) return null;
  return withLimit(node, a.index, n);
}

function withLimit(node: PlanNode, column: number, n: number): PlanNode | null {
  if (node.kind === "map") {
    const e = node.exprs[column];
    if (e?.kind !== "column") return null;
    const input = withLimit(node.input, e.index, n);
    return input && { ...node, input };
  }
  if (node.kind !== "window_function") return null;
  const f = node.functions[column - node.input.schema.fields.length];
  if (!f || (f.fn !== "row_number" && f.fn !== "rank" && f.fn !== "dense_rank")) return null;
  // Trimming rows changes what other functions see, unless they only look at better-ranked rows.
  if (!node.functions.every((g) => g.fn === "row_number" || g.fn === "rank" || g.fn === "dense_rank")) return null;
  if (node.limit && node.limit.by === f.fn && node.limit.n <= n) return node;
  if (node.limit && node.limit.by !== f.fn) return null;
  const limited = { ...node, limit: { n, by: f.fn } };
  // The best row by ROW_NUMBER of an append-only input is all a partition needs: nothing can retract it.
  return n === 1 && f.fn === "row_number" && node.updating && !node.input.updating ? { ...limited, deduplicate: true } : limited;
}

/**
 * Window functions carry every input column to their output, and over updating
 * partitions they keep those rows in state: `SELECT *, row_number() OVER (...)`
 * under an outer SELECT of five columns kept each bid's url and padding (q18,
 * q19), in memory and in every checkpoint. A projection above a window function
 * (through projections that only pick columns) that reads fewer of its input
 * columns narrows the projection below it (or gets one) to those, plus what
 * PARTITION BY, ORDER BY and the functions read. Only nodes with one consumer are narrowed,
 * so a view read twice is never planned twice.
 */
export function pruneWindowFunctionInputs(pipeline: LogicalPipeline): void {
  const consumers = consumerCounts(pipeline);
  const single = (n: PlanNode) => consumers.get(n) === 1;
  rewritePlan(pipeline, (node) => {
    if (node.kind !== "map") return node;
    let top = node;
    // A projection that only picks columns, without a filter, folds into the one above it.
    const picks = top.input;
    if (picks.kind === "map" && !picks.filter && single(picks) && picks.exprs.every((e) => e.kind === "column")) {
      const via = (i: number) => (picks.exprs[i] as Extract<Expr, { kind: "column" }>).index;
      top = { ...top, input: picks.input, exprs: top.exprs.map((e) => mapColumns(e, via)), filter: top.filter && mapColumns(top.filter, via) };
    }
    const w = top.input;
    if (w.kind !== "window_function" || !single(w)) return node;
    const below = w.input;
    const width = below.schema.fields.length;
    const cols = new Set<number>();
    const use = (e: Expr | undefined) => columnsUsed(e, cols);
    top.exprs.forEach(use);
    use(top.filter);
    const functionExprs = (f: WindowFunctionCall): Expr[] =>
      f.fn === "aggregate" ? [...f.call.args, ...(f.call.filter ? [f.call.filter] : []), ...(f.call.orderBy ?? []).map((o) => o.expr)] : "arg" in f ? [f.arg, ...("fallback" in f && f.fallback ? [f.fallback] : [])] : [];
    [...w.partition, ...w.order.map((o) => o.expr), ...w.functions.flatMap(functionExprs)].forEach(use);
    const kept = [...cols].filter((i) => i < width).sort((a, b) => a - b);
    if (kept.length === width) return node;
    const to = new Map(kept.map((c, i) => [c, i]));
    const inner = (e: Expr) => mapColumns(e, (i) => to.get(i)!);
    const remapFunction = (f: WindowFunctionCall): WindowFunctionCall => {
      if (f.fn === "aggregate") {
        const c = f.call;
        return { ...f, call: { ...c, args: c.args.map(inner), filter: c.filter && inner(c.filter), orderBy: c.orderBy?.map((o) => ({ ...o, expr: inner(o.expr) })) } };
      }
      if (f.fn === "lag" || f.fn === "lead") return { ...f, arg: inner(f.arg), fallback: f.fallback && inner(f.fallback) };
      if ("arg" in f) return { ...f, arg: inner(f.arg) };
      return f;
    };
    const fields = kept.map((c) => below.schema.fields[c]!);
    // The projection below narrows when only this reads it; otherwise a new one picks the columns.
    const narrowedBelow: PlanNode =
      below.kind === "map" && single(below)
        ? { ...below, exprs: kept.map((c) => below.exprs[c]!), schema: { ...below.schema, fields } }
        : mapNode(below, kept.map((c) => ({ kind: "column", index: c, name: below.schema.fields[c]!.name, type: below.schema.fields[c]!.type })), undefined, fields);
    const narrowed: PlanNode = {
      ...w,
      input: narrowedBelow,
      partition: w.partition.map(inner),
      order: w.order.map((o) => ({ ...o, expr: inner(o.expr) })),
      functions: w.functions.map(remapFunction),
      schema: { ...w.schema, fields: [...narrowedBelow.schema.fields, ...w.schema.fields.slice(width)] },
    };
    // Above: input columns by their new place, the functions' columns after them.
    const outer = (e: Expr) => mapColumns(e, (i) => (i < width ? to.get(i)! : kept.length + i - width));
    return { ...top, input: narrowed, exprs: top.exprs.map(outer), filter: top.filter && outer(top.filter) };
  });
}

/**
 * Deduplication (`rn = 1` planned as one kept row per partition) whose ranking
 * columns nothing above reads (the usual `WHERE rn = 1` once the limit took the
 * filter over) drops them: each ranking value is 1 anyway, and without them the
 * operator emits the kept row itself rather than a copy with the value appended,
 * so the projection above often becomes an identity (q18).
 */
export function dropUnreadRankings(pipeline: LogicalPipeline): void {
  const consumers = consumerCounts(pipeline);
  rewritePlan(pipeline, (node) => {
    if (node.kind !== "map") return node;
    const w = node.input;
    if (w.kind !== "window_function" || !w.deduplicate || w.functions.length === 0 || consumers.get(w) !== 1) return node;
    const width = w.input.schema.fields.length;
    const read = new Set<number>();
    const use = (e: Expr | undefined) => columnsUsed(e, read);
    node.exprs.forEach(use);
    use(node.filter);
    const keep = w.functions.map((_, k) => read.has(width + k));
    if (keep.every(Boolean)) return node;
    const to = new Map<number, number>();
    keep.forEach((kept, k) => kept && to.set(width + k, width + to.size));
    const trimmed: PlanNode = {
      ...w,
      functions: w.functions.filter((_, k) => keep[k]),
      schema: { ...w.schema, fields: w.schema.fields.filter((_, i) => i < width || keep[i - width]) },
    };
    const outer = (e: Expr) => mapColumns(e, (i) => (i < width ? i : to.get(i)!));
    return { ...node, input: trimmed, exprs: node.exprs.map(outer), filter: node.filter && outer(node.filter) };
  });
}
