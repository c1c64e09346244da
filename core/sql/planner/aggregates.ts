/**
 * GROUP BY and aggregate functions: an optional window (tumble, hop, session)
 * and keys, the aggregates of SELECT and HAVING computed once each, then the
 * SELECT list and HAVING over the grouped result.
 */
import { t, typeName, type Field, type SqlType } from "../../plugin-api/index.ts";
import type { Expr } from "../../expr/expr.ts";
import type { AggregateCall, PlanNode, SortKey, WindowSpec } from "../../plan/logical.ts";
import { AGGREGATE_FUNCTIONS } from "../../expr/aggregates.ts";
import { accepts, argInfos, KIND_NAMES } from "../../expr/functions.ts";
import { ExprError } from "../../expr/values.ts";
import { exprChildren, walkExpr, type Expr as AstExpr, type Select } from "../ast.ts";
import { didYouMean, SqlError } from "../errors.ts";
import {
  BUILTIN_AGGREGATE_NAMES,
  exprKey,
  resolveExpr,
  type Scope,
  type ScopeColumn,
} from "../expressions.ts";
import { isNumeric } from "../types.ts";
import { exprContext, fieldsOf, filterNode, mapNode, type QueryPlanner, type Rel } from "./context.ts";
import { expandItems, resolveWhere } from "./select.ts";
import { isWindowCall, windowExprKey, windowSpec } from "./windows.ts";
import { windowColumnOf } from "./joins.ts";

type Call = Extract<AstExpr, { kind: "call" }>;

/** Whether `e` is a call of an aggregate function (not a window function: those have OVER). */
export function isAggregate(p: QueryPlanner, e: AstExpr): boolean {
  if (e.kind !== "call" || e.over) return false;
  return BUILTIN_AGGREGATE_NAMES.has(e.name) || AGGREGATE_FUNCTIONS.has(e.name) || !!p.registry.udaf(e.name);
}

const AGGREGATE_MEMO = new WeakMap<object, boolean>();

/** Whether `e` holds an aggregate call outside subqueries and OVER; remembered per node, as GROUP BY asks it of every subexpression. */
export function containsAggregate(p: QueryPlanner, e: AstExpr): boolean {
  const known = AGGREGATE_MEMO.get(e);
  if (known !== undefined) return known;
  let found = isAggregate(p, e);
  if (!found && !(e.kind === "call" && e.over)) {
    for (const child of exprChildren(e)) {
      if (containsAggregate(p, child)) {
        found = true;
        break;
      }
    }
  }
  AGGREGATE_MEMO.set(e, found);
  return found;
}

export function aggregateCall(p: QueryPlanner, ast: Call, scope: Scope): AggregateCall {
  const at = ast.at;
  const fn = ast.name;
  const ctx = exprContext(p, `the arguments of ${fn}()`);
  const library = AGGREGATE_FUNCTIONS.get(fn);
  const udaf = !BUILTIN_AGGREGATE_NAMES.has(fn) && !library ? p.registry.udaf(fn) : undefined;
  if (!BUILTIN_AGGREGATE_NAMES.has(fn) && !library && !udaf) {
    const udafs = [...p.registry.udafs.keys()];
    const known = [...BUILTIN_AGGREGATE_NAMES, ...AGGREGATE_FUNCTIONS.keys(), ...udafs];
    throw new SqlError(`aggregate ${fn}() is not supported by Runnel${didYouMean(fn, known)}; available: ${known.join(", ")} (a UDAF plugin can add ${fn})`, at);
  }
  const star = ast.star;
  if (star && fn !== "count") throw new SqlError(`${fn}(*) is not allowed; only count(*)`, at);
  let argAsts = ast.args;
  // percentile_cont(0.5) WITHIN GROUP (ORDER BY x): the ordered value is the argument, the fraction a parameter.
  if (ast.withinGroup) {
    if (fn !== "percentile_cont" && fn !== "approx_percentile_cont") throw new SqlError(`${fn}() takes no WITHIN GROUP (ORDER BY ...); percentile_cont and approx_percentile_cont do`, at);
    if (ast.withinGroup.length !== 1) throw new SqlError(`WITHIN GROUP of ${fn}() takes one ORDER BY expression`, at);
    argAsts = [ast.withinGroup[0]!.expr, ...ast.args];
  }
  for (const a of argAsts) if (containsAggregate(p, a)) throw new SqlError("aggregate functions cannot be nested", at);
  let args = argAsts.map((a) => resolveExpr(a, scope, ctx));
  if (ast.withinGroup?.[0]?.desc && args[1]?.kind === "literal" && typeof args[1].value === "number") {
    args = [args[0]!, { ...args[1], value: 1 - args[1].value }, ...args.slice(2)];
  }
  let orderBy: SortKey[] | undefined;
  if (ast.orderBy) {
    if (!library?.ordered) throw new SqlError(`${fn}() takes no ORDER BY; array_agg, string_agg, first_value and last_value do`, at);
    orderBy = ast.orderBy.map((o) => ({ expr: resolveExpr(o.expr, scope, ctx), desc: o.desc, nullsFirst: o.nullsFirst ?? o.desc }));
  }
  let type: SqlType;
  if (udaf) {
    if (args.length !== udaf.args.length) throw new SqlError(`${fn}() takes ${udaf.args.length} argument(s), got ${args.length}`, at);
    type = udaf.returns;
  } else if (library) {
    const max = library.args.length;
    const min = max - (library.optional ?? 0);
    if (args.length < min || args.length > max) throw new SqlError(`${fn}() takes ${min === max ? min : `${min} to ${max}`} argument(s), got ${args.length}`, at);
    const values = library.values ?? max;
    args.forEach((a, i) => {
      const kind = library.args[i]!;
      const isNull = a.kind === "literal" && a.value === null;
      if (!isNull && !accepts(kind, a.type)) throw new SqlError(`${fn}() takes ${KIND_NAMES[kind]} as argument ${i + 1}, got ${typeName(a.type)}; cast it`, at);
      if (i >= values && a.kind !== "literal") throw new SqlError(`argument ${i + 1} of ${fn}() must be a constant`, a.kind === "column" ? at : at);
    });
    try {
      library.check?.(argInfos(args));
      type = library.returns(argInfos(args));
    } catch (err) {
      if (err instanceof ExprError) throw new SqlError(err.message, at);
      throw err;
    }
    if (ast.distinct && (library.values ?? max) > 1) throw new SqlError(`${fn}(DISTINCT ...) is not supported: DISTINCT applies to aggregates of one value`, at);
  } else {
    if (!star && args.length !== 1) throw new SqlError(`${fn}() takes one argument`, at);
    const arg = args[0]?.type;
    switch (fn) {
      case "count":
        type = t.bigint();
        break;
      case "sum":
        if (arg!.kind === "int") type = { kind: "int", bits: 64, ...(arg!.unsigned ? { unsigned: true } : {}) };
        else if (arg!.kind === "interval") type = t.interval();
        else if (isNumeric(arg!)) type = t.double();
        else throw new SqlError(`sum() needs numbers, got ${typeName(arg!)}`, at);
        break;
      case "avg":
        if (!isNumeric(arg!)) throw new SqlError(`avg() needs numbers, got ${typeName(arg!)}`, at);
        type = t.double();
        break;
      default:
        if (arg!.kind === "struct" || arg!.kind === "array" || arg!.kind === "map") throw new SqlError(`${fn}() cannot compare ${typeName(arg!)} values`, at);
        type = arg!;
    }
  }
  let filter: Expr | undefined;
  if (ast.filter) {
    if (containsAggregate(p, ast.filter)) throw new SqlError("FILTER (WHERE ...) of an aggregate cannot contain aggregate functions", ast.filter.at);
    filter = resolveExpr(ast.filter, scope, exprContext(p, `FILTER of ${fn}()`));
    if (filter.type.kind !== "boolean") {
      throw new SqlError(`FILTER (WHERE ...) of ${fn}() needs a boolean condition, got ${typeName(filter.type)}`, ast.filter.at);
    }
  }
  const call: AggregateCall = { fn, args, distinct: ast.distinct, star, filter, type };
  if (orderBy) call.orderBy = orderBy;
  return call;
}

/** Refuses, at the call, an aggregate that cannot take the retractions of an updating input. */
export function checkRetractable(p: QueryPlanner, call: AggregateCall, at: number): void {
  const library = AGGREGATE_FUNCTIONS.get(call.fn);
  if (library && !library.retractable) {
    throw new SqlError(
      `${call.fn}() cannot read an updating input: its ${library.approximate ? "approximate " : ""}state cannot take a row back out. ` +
        `Aggregate per window instead (GROUP BY tumble(...)), or use ${call.fn === "approx_distinct" ? "count(DISTINCT ...)" : call.fn.includes("percentile") ? "percentile_cont(p) WITHIN GROUP (ORDER BY x)" : call.fn === "approx_median" ? "median()" : "an aggregate that can"}`,
      at,
    );
  }
  const udaf = !library && !BUILTIN_AGGREGATE_NAMES.has(call.fn) ? p.registry.udaf(call.fn) : undefined;
  if (udaf && !udaf.retract) {
    throw new SqlError(`UDAF ${call.fn}() cannot read an updating input: it defines no retract(); add one to the UDAF, or aggregate per window`, at);
  }
}

/** Identifies an aggregate call, so the same call in SELECT and HAVING is computed once. */
function aggregateKey(call: AggregateCall): string {
  const name = call.fn + (call.distinct ? ":distinct" : "") + (call.star ? ":star" : "");
  const filter = (call.filter ? `:filter(${exprKey(call.filter)})` : "") + (call.orderBy ? `:order(${call.orderBy.map((o) => exprKey(o.expr) + o.desc + o.nullsFirst).join(",")})` : "");
  return exprKey({ kind: "call", name: name + filter, args: call.args, type: call.type });
}

const isLiteral = (e: AstExpr) => e.kind === "number" || e.kind === "string" || e.kind === "boolean" || e.kind === "null" || e.kind === "interval" || e.kind === "timestamp";

export function planAggregate(p: QueryPlanner, select: Select, inputIn: Rel): Rel {
  let input = inputIn;
  const scope = input.scope;
  const items = select.items;
  if (select.where) input = { node: filterNode(input.node, scope, resolveWhere(p, select.where, scope)), scope };

  // GROUP BY: one optional window, then keys (which may name SELECT aliases).
  let window: { spec: WindowSpec; ast: Call; alias?: string } | undefined;
  /** A GROUP BY key that is the input's window column: grouped per that window. */
  let carried: { keyIndex: number; spec: WindowSpec } | undefined;
  const keys: Expr[] = [];
  const keyNames: (ScopeColumn | undefined)[] = [];
  const aliasItems = new Map<string, AstExpr>();
  for (const item of items) if (item.kind === "expr" && item.alias) aliasItems.set(item.alias.toLowerCase(), item.expr);
  const keyCtx = exprContext(p, "GROUP BY");
  for (const g of select.groupBy) {
    let target = g;
    let viaAlias: string | undefined;
    if (g.kind === "column" && g.parts.length === 1) {
      const name = g.parts[0]!;
      const inInput = scope.columns.some((c) => c.name.toLowerCase() === name.toLowerCase());
      if (!inInput && aliasItems.has(name.toLowerCase())) {
        target = aliasItems.get(name.toLowerCase())!;
        viaAlias = name;
      }
    }
    if (g.kind === "number") {
      const pos = Number(g.text);
      const item = items[pos - 1];
      if (!item) throw new SqlError(`GROUP BY ${pos}: the SELECT list has ${items.length} items`, g.at);
      if (item.kind !== "expr") throw new SqlError(`GROUP BY ${pos}: item ${pos} of the SELECT list is *`, g.at);
      target = item.expr;
    }
    if (isWindowCall(target)) {
      if (window || carried) throw new SqlError("GROUP BY can hold one window (tumble, hop or session)", target.at);
      window = { spec: windowSpec(p, target, scope), ast: target, alias: viaAlias };
      continue;
    }
    if (containsAggregate(p, target)) throw new SqlError("GROUP BY cannot contain aggregate functions", target.at);
    const e = resolveExpr(target, scope, keyCtx);
    const inputWindow = windowColumnOf(input.node);
    if (e.kind === "column" && inputWindow && e.index === inputWindow.index) {
      // The window of a windowed subquery (Nexmark q5's shape): its rows share the window's last µs as event time.
      if (window || carried) throw new SqlError("GROUP BY can hold one window (tumble, hop or session)", g.at);
      carried = { keyIndex: keys.length, spec: inputWindow.spec };
    } else if (e.type.kind === "struct" && e.kind === "column" && e.name.toLowerCase() === "window") {
      throw new SqlError(
        "this `window` column does not come straight from a windowed aggregate (it was computed, or passed through an updating step); " +
          "GROUP BY the window of the subquery's own GROUP BY",
        g.at,
      );
    }
    keys.push(e);
    const source = e.kind === "column" ? scope.columns[e.index] : undefined;
    const named = viaAlias ?? (target.kind === "column" ? target.parts[target.parts.length - 1] : undefined);
    keyNames.push(named ? { name: named, qualifier: source?.qualifier, type: e.type, nullable: source?.nullable ?? true } : undefined);
  }
  // A window selected but missing from GROUP BY.
  for (const item of items) {
    if (item.kind !== "expr" || !isWindowCall(item.expr)) continue;
    if (!window || exprKey(windowExprKey(item.expr)) !== exprKey(windowExprKey(window.ast))) {
      if (!window) throw new SqlError(`${item.expr.name}() must also appear in GROUP BY (GROUP BY ${item.alias ?? "window"}, ...)`, item.expr.at);
      throw new SqlError("the window in the SELECT list differs from the one in GROUP BY", item.expr.at);
    }
  }

  // Aggregates from SELECT and HAVING, deduplicated.
  const aggregates: AggregateCall[] = [];
  const aggIndex = new Map<string, number>();
  const collect = (x: AstExpr) =>
    walkExpr(x, (n) => {
      if (isAggregate(p, n)) {
        const call = aggregateCall(p, n as Call, input.scope);
        const key = aggregateKey(call);
        if (input.node.updating) checkRetractable(p, call, n.at);
        if (!aggIndex.has(key)) {
          aggIndex.set(key, aggregates.length);
          aggregates.push(call);
        }
        return false;
      }
      if (n.kind === "call" && n.over) return false;
    });
  for (const item of items) if (item.kind === "expr") collect(item.expr);
  if (select.having) collect(select.having);

  // Output of the aggregate: [...keys, window?, ...aggregates].
  // The window aggregate's output has a window slot after the keys; a carried window's 1 µs panes fill it unseen.
  const hasSlot = !!window || !!carried;
  const windowSlot = hasSlot ? keys.length : -1;
  const aggBase = keys.length + (hasSlot ? 1 : 0);
  const windowType = t.struct([
    { name: "start", type: t.timestamp(), nullable: false },
    { name: "end", type: t.timestamp(), nullable: false },
  ]);
  const aggFields: Field[] = [
    ...keys.map((k, i) => ({ name: keyNames[i]?.name ?? `key_${i}`, type: k.type, nullable: true })),
    ...(hasSlot ? [{ name: window ? (window.alias ?? "window") : "\u0000pane", type: windowType, nullable: false }] : []),
    ...aggregates.map((a, i) => ({ name: `${a.fn}_${i}`, type: a.type, nullable: true })),
  ];
  if (window && input.node.updating) {
    throw new SqlError("a windowed aggregate cannot read an updating result (the output of GROUP BY without a window)", window.ast.at);
  }
  if (carried && input.node.updating) throw new SqlError("a windowed aggregate cannot read an updating result", select.at);
  // Grouping by a carried window: every row of one window has its last µs as event time, so 1 µs panes group
  // them exactly and close when the watermark passes the window's end. The key column stays the window.
  const panes: WindowSpec | undefined = window?.spec ?? (carried && { kind: "tumble", width: 1 });
  const node: PlanNode = panes
    ? { kind: "window_aggregate", input: input.node, window: panes, keys, aggregates, schema: { fields: aggFields }, updating: false, ...(carried ? { carried } : {}) }
    : { kind: "updating_aggregate", input: input.node, keys, aggregates, schema: { fields: aggFields }, updating: true, ttl: p.updatingTtl, ttlRetract: p.updatingTtlRetract };

  // After aggregation: names resolve to keys, the window and aggregates.
  const groupedColumns: ScopeColumn[] = aggFields.map((f, i) => {
    if (i < keys.length) return keyNames[i] ?? { name: `\u0000key${i}`, type: f.type, nullable: true };
    if (i === windowSlot) return { name: f.name, type: f.type, nullable: false };
    return { name: `\u0000agg${i}`, type: f.type, nullable: true };
  });
  const grouped: Scope = { columns: groupedColumns, label: "the grouped result" };
  const keyKeys = keys.map(exprKey);
  const column = (i: number): Expr => ({ kind: "column", index: i, name: aggFields[i]!.name, type: aggFields[i]!.type });
  const hook = (x: AstExpr): Expr | undefined => {
    if (isAggregate(p, x)) {
      const call = aggregateCall(p, x as Call, input.scope);
      return column(aggBase + aggIndex.get(aggregateKey(call))!);
    }
    if (isWindowCall(x)) return column(windowSlot);
    if (!isLiteral(x) && !containsAggregate(p, x)) {
      let resolved: Expr | undefined;
      try {
        resolved = resolveExpr(x, input.scope, keyCtx);
      } catch {
        resolved = undefined;
      }
      if (resolved) {
        const k = keyKeys.indexOf(exprKey(resolved));
        if (k >= 0) return column(k);
        if (x.kind === "column") {
          const name = x.parts[x.parts.length - 1]!;
          if (!(window && name.toLowerCase() === (window.alias ?? "window").toLowerCase())) {
            throw new SqlError(`column \`${name}\` must appear in GROUP BY or be used in an aggregate function`, x.partAt[x.partAt.length - 1] ?? x.at);
          }
        }
      }
    }
    return undefined;
  };
  const ctx = exprContext(p, "the SELECT list", hook);
  // `*` after GROUP BY would silently mean only the grouped columns.
  const starItem = items.find((item) => item.kind === "star");
  if (starItem) throw new SqlError("SELECT * cannot be used with GROUP BY; list the grouped columns and aggregates", starItem.at);
  const selected = expandItems(items, grouped);
  const exprs = selected.map((s) => resolveExpr(s.ast!, grouped, ctx));
  let having: Expr | undefined;
  if (select.having) {
    having = resolveExpr(select.having, grouped, { ...ctx, clause: "HAVING" });
    if (having.type.kind !== "boolean") throw new SqlError(`HAVING needs a boolean condition, got ${typeName(having.type)}`, select.having.at);
  }
  const columns: ScopeColumn[] = selected.map((s, i) => ({ name: s.name, type: exprs[i]!.type, nullable: true }));
  const outScope: Scope = { columns, label: "the query" };
  return { node: mapNode(node, exprs, having, fieldsOf(outScope)), scope: outScope };
}

