/**
 * What gives a pipeline's state its meaning, hashed per operator: expressions
 * with their types, keys, windows, aggregates and their filters, join
 * conditions, and the identity of every source and sink (connector, format,
 * columns and options, secrets left out so rotating a password keeps state).
 * A checkpoint records these signatures; a restore whose signatures differ is
 * refused naming the first operator that changed, so an edited query never
 * resumes state computed for another one.
 */
import type { Expr } from "../expr/expr.ts";
import type { PlanNode, TableDef } from "../plan/logical.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import type { PhysicalGraph, PhysicalNode } from "./graph.ts";

export interface OperatorSignature {
  label: string;
  /** Hash of the operator's own definition (without its inputs). */
  own: string;
  /** Hash of its definition and, recursively, of everything feeding it. */
  full: string;
}

export type PipelineSignatures = Record<string, OperatorSignature>;

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

/** An operator's own definition, without its inputs. */
function ownDefinition(node: PhysicalNode, registry: PluginRegistry): unknown {
  if (node.kind === "sink") return { kind: "sink", table: tableIdentity(node.sink!.table, registry), schema: node.sink!.input.schema };
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
        aggregates: plan.aggregates.map((a) => ({ fn: a.fn, args: exprText(a.args), distinct: a.distinct, star: a.star, filter: exprText(a.filter), type: a.type })),
        updatingInput: plan.input.updating,
      };
    case "changelog":
      return { kind: "changelog", keys: exprText(plan.keys) };
    case "async_udf":
      return { kind: "async_udf", calls: exprText(plan.calls), options: plan.calls.map((c) => c.async) };
    case "union":
      return { kind: "union", inputs: plan.inputs.length };
    case "join":
      return { kind: "join", joinType: plan.joinType, leftKeys: exprText(plan.leftKeys), rightKeys: exprText(plan.rightKeys), window: plan.window ?? null };
  }
}

export function pipelineSignatures(graph: PhysicalGraph, registry: PluginRegistry): PipelineSignatures {
  const out: PipelineSignatures = {};
  // Nodes are numbered so that inputs come first.
  for (const node of graph.nodes) {
    const own = hash(JSON.stringify({ definition: ownDefinition(node, registry), schema: node.plan?.schema ?? null }));
    const full = hash(JSON.stringify([own, node.inputs.map((i) => out[i.id]!.full)]));
    out[node.id] = { label: node.label, own, full };
  }
  return out;
}

/** Why state checkpointed under `stored` cannot be restored into a pipeline with `current`, or null when it can. */
export function signatureMismatch(stored: PipelineSignatures, current: PipelineSignatures): string | null {
  const ids = [...new Set([...Object.keys(current), ...Object.keys(stored)])].sort((a, b) => parseInt(a) - parseInt(b));
  for (const id of ids) {
    const was = stored[id];
    const now = current[id];
    if (!was) return `operator ${id} ("${now!.label}") was added`;
    if (!now) return `operator ${id} ("${was.label}") was removed`;
    if (was.own !== now.own) {
      return was.label === now.label
        ? `operator ${id} ("${now.label}") has other expressions, keys, types or options`
        : `operator ${id} was "${was.label}" and is now "${now.label}"`;
    }
  }
  for (const id of ids) if (stored[id]!.full !== current[id]!.full) return `the inputs of operator ${id} ("${current[id]!.label}") are wired differently`;
  return null;
}
