/**
 * A projection feeding an aggregate keeps only the columns the aggregate reads.
 * Views and `SELECT *` carry every column of a source down to the GROUP BY;
 * in one process that costs little, but the GROUP BY's hash shuffle sends
 * whole rows between workers (Nexmark q5 sent each bid's url and padding to
 * count bids per auction, and spent most of its time encoding them). The
 * aggregate's output is unchanged, so nothing above it is touched.
 */
import { childrenOf, type Expr } from "../expr/expr.ts";
import type { AggregateCall, LogicalPipeline, PlanNode } from "../plan/logical.ts";
import { inputsOf, rewriteInRounds, rewritePlan } from "../plan/rewrite.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { columnsUsed, mapColumns, mapNode } from "./planner/context.ts";

function usedByAggregates(keys: Expr[], aggregates: AggregateCall[]): Set<number> {
  const cols = new Set<number>();
  for (const k of keys) columnsUsed(k, cols);
  for (const a of aggregates) {
    for (const x of a.args) columnsUsed(x, cols);
    columnsUsed(a.filter, cols);
    for (const o of a.orderBy ?? []) columnsUsed(o.expr, cols);
  }
  return cols;
}

/** `node`'s aggregate over a narrower copy of its input projection, or `node` when nothing can go. */
function narrowed(node: Extract<PlanNode, { kind: "window_aggregate" | "updating_aggregate" }>): PlanNode {
  const input = node.input;
  if (input.kind !== "map") return node;
  const cols = usedByAggregates(node.keys, node.aggregates);
  if (cols.size >= input.exprs.length) return node;
  const kept = [...cols].sort((a, b) => a - b);
  const to = new Map(kept.map((c, i) => [c, i]));
  const remap = (e: Expr) => mapColumns(e, (i) => to.get(i)!);
  const map: PlanNode = { ...input, exprs: kept.map((c) => input.exprs[c]!), schema: { ...input.schema, fields: kept.map((c) => input.schema.fields[c]!) } };
  return {
    ...node,
    input: map,
    keys: node.keys.map(remap),
    aggregates: node.aggregates.map((a) => ({
      ...a,
      args: a.args.map(remap),
      filter: a.filter && remap(a.filter),
      orderBy: a.orderBy?.map((o) => ({ ...o, expr: remap(o.expr) })),
    })),
  };
}

export function pruneAggregateInputs(pipeline: LogicalPipeline): void {
  rewritePlan(pipeline, (node) => (node.kind === "window_aggregate" || node.kind === "updating_aggregate" ? narrowed(node) : node));
}

type SourceNode = Extract<PlanNode, { kind: "source" }>;

/** A physical column `filter` requires to be non-null (a top-level `col IS NOT NULL` conjunct), if any. */
function requiredNotNull(filter: Expr | undefined, physical: number): number | undefined {
  // A fused filter: CASE WHEN inner THEN outer ELSE false END keeps only rows both keep.
  if (filter?.kind === "case" && !filter.operand && filter.whens.length === 1 && (!filter.otherwise || (filter.otherwise.kind === "literal" && filter.otherwise.value !== true))) {
    return requiredNotNull(filter.whens[0]!.when, physical) ?? requiredNotNull(filter.whens[0]!.then, physical);
  }
  if (!filter || filter.kind !== "call") return undefined;
  if (filter.name === "and") return requiredNotNull(filter.args[0], physical) ?? requiredNotNull(filter.args[1], physical);
  const arg = filter.args[0];
  if (filter.name === "is_not_null" && arg?.kind === "column" && arg.index < physical) return arg.index;
  return undefined;
}

/**
 * Pushes into each source (Flink's projection and filter push-down) what the
 * plan reads of it, so a reader can skip filling the rest: the `bid` view
 * reads only the generator's `bid` column, and q0 then builds no person or
 * auction. Only a projection right above the source narrows; any other
 * consumer (a join, a sink, a changelog) reads every column. Rows keep their
 * shape (unread columns are null), so no plan above changes. A struct column
 * read only through its fields (`bid.auction`) also names those fields, so a
 * reader may leave the others out (q5 never builds a bid's url or padding). Where every
 * consumer filters `col IS NOT NULL` and the connector takes that filter
 * (see its `source.filters`), the reader may also leave out the rows none of
 * them keeps; the consumers' filters stay in the plan.
 */
export function pruneSourceColumns(pipeline: LogicalPipeline, registry: PluginRegistry): void {
  const reads = new Map<SourceNode, { cols: Set<number> | "all"; notNull: Set<number> | "all"; fields: FieldsUsed }>();
  const note = (source: SourceNode, consumer: PlanNode) => {
    const physical = source.table.fields.length;
    let r = reads.get(source);
    if (!r) reads.set(source, (r = { cols: new Set(), notNull: new Set(), fields: new Map() }));
    if (consumer.kind !== "map") {
      r.cols = r.notNull = "all";
      return;
    }
    if (r.cols !== "all") {
      for (const e of [...consumer.exprs, consumer.filter]) {
        columnsUsed(e, r.cols);
        fieldsUsed(e, r.fields);
      }
    }
    const nn = requiredNotNull(consumer.filter, physical);
    if (nn === undefined) r.notNull = "all";
    else if (r.notNull !== "all") r.notNull.add(nn);
  };
  const seen = new Set<PlanNode>();
  const visit = (node: PlanNode): void => {
    if (seen.has(node)) return;
    seen.add(node);
    for (const input of inputsOf(node)) {
      if (input.kind === "source") note(input, node);
      visit(input);
    }
  };
  for (const sink of pipeline.sinks) {
    if (sink.input.kind === "source") note(sink.input, sink.input);
    visit(sink.input);
  }
  for (const [source, { cols, notNull, fields }] of reads) {
    const { table } = source;
    // A left-out row sets no watermark: only where the source's own times are the event times (the
    // connector vouches that they never decrease), not an expression over columns it would not read.
    const takesNotNull = registry.connector(table.connector!)?.source?.filters?.includes("not_null") ?? false;
    if (notNull !== "all" && takesNotNull && !table.eventTime && !table.watermark) source.notNull = [...notNull].sort((a, b) => a - b);
    if (cols === "all") continue;
    const physical = table.fields.length;
    // The source subtask computes every generated column (over the physical row), the event time and the
    // watermark (over the whole row, generated columns included) whatever the query reads.
    for (const e of [...table.virtual.map((v) => v.expr), table.eventTime, table.watermark]) {
      columnsUsed(e, cols);
      fieldsUsed(e, fields);
    }
    for (const k of table.primaryKey ?? []) {
      cols.add(k);
      fields.set(k, "all");
    }
    const kept = [...cols].filter((c) => c < physical).sort((a, b) => a - b);
    if (kept.length < physical) source.reads = kept;
    const structFields: Record<number, string[]> = {};
    for (const [c, names] of fields) {
      if (c < physical && names !== "all" && table.fields[c]!.type.kind === "struct") structFields[c] = [...names].sort();
    }
    if (Object.keys(structFields).length > 0) source.fieldsRead = structFields;
  }
}

/** Per column, the struct fields read of it (`col.name`), or "all" where the whole value is read. */
type FieldsUsed = Map<number, Set<string> | "all">;

function fieldsUsed(e: Expr | undefined, into: FieldsUsed): void {
  if (!e) return;
  if (e.kind === "column") {
    into.set(e.index, "all");
    return;
  }
  if (e.kind === "field" && e.expr.kind === "column") {
    const had = into.get(e.expr.index);
    if (had !== "all") into.set(e.expr.index, (had ?? new Set()).add(e.name));
    return;
  }
  // `col IS [NOT] NULL` reads whether the struct is there, none of its fields.
  if (e.kind === "call" && (e.name === "is_not_null" || e.name === "is_null") && e.args[0]?.kind === "column") {
    if (!into.has(e.args[0].index)) into.set(e.args[0].index, new Set());
    return;
  }
  for (const c of childrenOf(e)) fieldsUsed(c, into);
}

type JoinNode = Extract<PlanNode, { kind: "join" }>;

/** `node` keeping only columns `kept` (ascending): itself when that is all of them, its own projection narrowed when only the join reads it, else a new one. */
function narrowTo(node: PlanNode, kept: number[], only: (n: PlanNode) => boolean): PlanNode {
  if (kept.length === node.schema.fields.length) return node;
  const fields = kept.map((c) => node.schema.fields[c]!);
  if (node.kind === "map" && only(node)) return { ...node, exprs: kept.map((c) => node.exprs[c]!), schema: { ...node.schema, fields } };
  return mapNode(node, kept.map((c) => ({ kind: "column", index: c, name: node.schema.fields[c]!.name, type: node.schema.fields[c]!.type })), undefined, fields);
}

/**
 * The projection over a join, with the join below it reading only the columns
 * the projection, the join keys, the ON condition and the window read. A join
 * stores its input rows (an updating join forever), so Nexmark q4 kept each
 * bid's url and padding and each auction's description in memory and wrote
 * them into every checkpoint, to read four numbers. `node` itself when nothing
 * can go.
 */
function joinNarrowed(node: Extract<PlanNode, { kind: "map" }>, only: (n: PlanNode) => boolean): PlanNode {
  const join = node.input;
  if (join.kind !== "join" || !only(join)) return node;
  const leftWidth = join.left.schema.fields.length;
  const rightWidth = join.right.schema.fields.length;
  const leftOnly = join.joinType === "semi" || join.joinType === "anti";
  const overJoin = new Set<number>();
  for (const e of [...node.exprs, node.filter]) columnsUsed(e, overJoin);
  columnsUsed(join.condition, overJoin);
  const left = new Set<number>();
  const right = new Set<number>();
  for (const i of overJoin) (i < leftWidth ? left : right).add(i < leftWidth ? i : i - leftWidth);
  for (const k of join.leftKeys) columnsUsed(k, left);
  for (const k of join.rightKeys) columnsUsed(k, right);
  if (join.window) left.add(join.window.leftColumn), right.add(join.window.rightColumn);
  if (left.size === leftWidth && right.size === rightWidth) return node;
  const keptLeft = [...left].sort((a, b) => a - b);
  const keptRight = [...right].sort((a, b) => a - b);
  const toLeft = new Map(keptLeft.map((c, i) => [c, i]));
  const toRight = new Map(keptRight.map((c, i) => [c, i]));
  const joined = (i: number) => (i < leftWidth ? toLeft.get(i)! : keptLeft.length + toRight.get(i - leftWidth)!);
  const newLeft = narrowTo(join.left, keptLeft, only);
  const newRight = narrowTo(join.right, keptRight, only);
  const narrowed: JoinNode = {
    ...join,
    left: newLeft,
    right: newRight,
    leftKeys: join.leftKeys.map((k) => mapColumns(k, (i) => toLeft.get(i)!)),
    rightKeys: join.rightKeys.map((k) => mapColumns(k, (i) => toRight.get(i)!)),
    condition: join.condition && mapColumns(join.condition, joined),
    window: join.window && { ...join.window, leftColumn: toLeft.get(join.window.leftColumn)!, rightColumn: toRight.get(join.window.rightColumn)! },
    schema: { ...join.schema, fields: leftOnly ? newLeft.schema.fields : [...newLeft.schema.fields, ...newRight.schema.fields] },
  };
  return { ...node, input: narrowed, exprs: node.exprs.map((e) => mapColumns(e, joined)), filter: node.filter && mapColumns(node.filter, joined) };
}

export function pruneJoinInputs(pipeline: LogicalPipeline): void {
  // Joins narrow one level down per round: a side narrowed in a round is a new node, counted in the next.
  rewriteInRounds(pipeline, (node, only) => (node.kind === "map" ? joinNarrowed(node, only) : node));
}
