/**
 * What gives an operator's state its meaning, hashed into the identity its
 * state is stored under: its expressions with their types, keys, windows,
 * aggregates and their filters, join conditions, and the identity of every
 * source and sink feeding it (connector, format, columns and options, secrets
 * left out so rotating a password keeps state). A restore matches state to
 * operators by identity: an edit that leaves an operator's identity (a filter
 * or projection changed, a sink added) keeps its state; one that changes an
 * operator holding state is refused naming it, so an edited query never
 * resumes state computed for another meaning.
 */
import type { Expr } from "../expr/expr.ts";
import type { PlanNode, TableDef } from "../plan/logical.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import type { PhysicalGraph, PhysicalNode } from "./graph.ts";

/** How an operator's state is known across runs of a pipeline. */
export interface OperatorIdentity {
  /** Stable while the operator's own definition and the sources feeding it stay the same. */
  stateId: string;
  label: string;
}

const hash = (text: string) => Bun.hash(text).toString(16);

/** JSON of an expression tree; a UDF stands for its name and source text. */
function exprText(e: Expr | Expr[] | undefined): string {
  return JSON.stringify(e ?? null, (_key, value) => (typeof value === "function" ? `fn:${hash(String(value))}` : value));
}

function secretOptions(table: TableDef, registry: PluginRegistry): Set<string> {
  const out = new Set<string>();
  const shapes = [table.connector ? registry.connector(table.connector)?.options : undefined, table.format ? registry.format(table.format.name)?.options : undefined];
  for (const shape of shapes) {
    for (const [key, spec] of Object.entries(shape ?? {})) if ((spec as { secret?: boolean }).secret) out.add(key);
  }
  return out;
}

function tableIdentity(table: TableDef | null, registry: PluginRegistry): unknown {
  if (!table) return "preview";
  const secrets = secretOptions(table, registry);
  const keep = (options: Record<string, unknown>) => Object.fromEntries(Object.entries(options).filter(([k]) => !secrets.has(k)).sort(([a], [b]) => a.localeCompare(b)));
  return {
    name: table.name,
    connector: table.connector ?? null,
    format: table.format ? { name: table.format.name, options: keep(table.format.options) } : null,
    options: keep(table.options),
    fields: table.fields,
    metadata: table.metadata ?? null,
    virtual: table.virtual.map((v) => [v.field, exprText(v.expr)]),
    eventTime: exprText(table.eventTime),
    watermark: exprText(table.watermark),
  };
}

/**
 * What deduplication keeps per partition (core/operators/deduplicate.ts): the row
 * alone when ORDER BY names columns (they are read back from it), else the row
 * and its evaluated keys. State of the other layout must not be read as this one.
 */
function dedupeLayout(order: { expr: Expr }[]): string | true {
  return order.every((o) => o.expr.kind === "column") ? "row" : true;
}

/** An operator's own definition, without its inputs. */
function ownDefinition(node: PhysicalNode, registry: PluginRegistry): unknown {
  // A sink is its target and the types it receives; renaming a query's columns leaves it as it was.
  if (node.kind === "sink") return { kind: "sink", table: tableIdentity(node.sink!.table, registry), types: node.sink!.input.schema.fields.map((f) => f.type) };
  const plan = node.plan as PlanNode;
  switch (plan.kind) {
    case "source":
      return { kind: "source", table: tableIdentity(plan.table, registry) };
    case "map":
      return { kind: "map", exprs: exprText(plan.exprs), filter: exprText(plan.filter) };
    case "window_aggregate":
    case "updating_aggregate":
      return {
        kind: plan.kind,
        window: plan.kind === "window_aggregate" ? plan.window : null,
        keys: exprText(plan.keys),
        aggregates: plan.aggregates.map((a) => ({ fn: a.fn, args: exprText(a.args), ...(a.orderBy ? { orderBy: exprText(a.orderBy.map((o) => o.expr)) } : {}), distinct: a.distinct, star: a.star, filter: exprText(a.filter), type: a.type })),
        updatingInput: plan.input.updating,
      };
    case "changelog":
      return { kind: "changelog", keys: exprText(plan.keys) };
    case "window_function":
      return { kind: "window_function", partition: exprText(plan.partition), order: exprText(plan.order.map((o) => o.expr)), functions: plan.functions.map((f) => f.fn), limit: plan.limit ?? null, ...(plan.deduplicate ? { deduplicate: dedupeLayout(plan.order) } : {}) };
    case "async_udf":
      return { kind: "async_udf", calls: exprText(plan.calls), options: plan.calls.map((c) => c.async) };
    case "unnest":
      return { kind: "unnest", array: exprText(plan.array) };
    case "union":
      return { kind: "union", inputs: plan.inputs.length };
    case "lookup_join":
      // No state: the store's connection and cache settings may change between runs.
      return { kind: "lookup_join", joinType: plan.joinType, keys: exprText(plan.keys), table: plan.table.name, fields: plan.table.fields };
    case "join":
      return {
        kind: "join",
        joinType: plan.joinType,
        leftKeys: exprText(plan.leftKeys),
        rightKeys: exprText(plan.rightKeys),
        window: plan.window ?? null,
        ...(plan.condition ? { condition: exprText(plan.condition) } : {}),
      };
  }
}

/**
 * A stable identity per operator: its kind, its own definition and the sources
 * feeding it, so editing a stateless operator (a filter, a projection) or adding a
 * sink leaves the identities of the others, and so their state, where they were.
 * Identical operators over the same sources are told apart by their order.
 */
export function stateIdentities(graph: PhysicalGraph, registry: PluginRegistry): Record<string, OperatorIdentity> {
  const out: Record<string, OperatorIdentity> = {};
  const sources = new Map<string, string[][]>();
  const seen = new Map<string, number>();
  for (const node of graph.nodes) {
    const own = hash(JSON.stringify({ definition: ownDefinition(node, registry), schema: node.plan?.schema ?? null }));
    // Per input, the sources it reads (a join's two sides stay apart).
    const fed = node.kind === "source" ? [[own]] : node.inputs.map((i) => [...new Set(sources.get(i.id)!.flat())].sort());
    sources.set(node.id, fed);
    const base = `${node.kind}-${hash(JSON.stringify([own, fed]))}`;
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out[node.id] = { stateId: n === 0 ? base : `${base}-${n + 1}`, label: `${node.id}: ${node.label}` };
  }
  return out;
}

/**
 * Why state checkpointed with `stored` (operator state id → label) cannot be
 * restored into a pipeline with `current` identities: an operator holding state
 * that changed or went, whose state would otherwise be dropped or misread.
 */
export function incompatibility(stored: Record<string, string>, current: Record<string, OperatorIdentity>): string | null {
  const ids = new Set(Object.values(current).map((c) => c.stateId));
  for (const [id, label] of Object.entries(stored)) {
    if (!ids.has(id)) return `operator "${label}" holds state but changed or was removed`;
  }
  return null;
}
