/**
 * What the parts of the query planner share: a planned relation (a plan node
 * and the names its columns answer to), the planner's state they read and
 * write, and small constructors of plan nodes.
 */
import type { Field } from "../../plugin-api/index.ts";
import type { Expr } from "../../expr/expr.ts";
import type { PlanNode, TableDef } from "../../plan/logical.ts";
import type { PluginRegistry } from "../../registry/registry.ts";
import type * as A from "../ast.ts";
import type { ExprContext, Scope } from "../expressions.ts";
import type { CreateView, Insert } from "../statements.ts";
import type { PlanContext } from "../tables.ts";

/** A planned relation: a plan node and the names its columns answer to. */
export interface Rel {
  node: PlanNode;
  scope: Scope;
}

interface CteEntry {
  query: A.Query;
  rel?: Rel;
  planning?: boolean;
}

/** The CTEs visible where a query is planned, innermost first. */
export class CteEnv {
  private readonly entries = new Map<string, CteEntry>();
  constructor(readonly parent: CteEnv | null) {}
  add(name: string, entry: CteEntry) {
    this.entries.set(name.toLowerCase(), entry);
  }
  get(name: string): CteEntry | undefined {
    return this.entries.get(name.toLowerCase()) ?? this.parent?.get(name);
  }
}

/** The planner's state, as the parts of query planning see it. */
export interface QueryPlanner {
  readonly sql: string;
  readonly registry: PluginRegistry;
  readonly context: PlanContext;
  readonly tables: Map<string, TableDef>;
  readonly views: Map<string, { stmt: CreateView; rel?: Rel; planning?: boolean }>;
  readonly memoryInserts: Map<string, Insert[]>;
  readonly memoryRels: Map<string, { rel?: Rel; planning?: boolean }>;
  /** One source node per table, so a table read twice is read once. */
  readonly sourceNodes: Map<TableDef, PlanNode>;
  /** µs that updating state (aggregates, joins, change streams) is kept after its key's last change; unbounded when undefined. */
  readonly updatingTtl: number | undefined;
  /** Whether an aggregate group dropped by the TTL retracts its row downstream. */
  readonly updatingTtlRetract: boolean;
  markUsed(table: TableDef, role: "source" | "sink" | "lookup"): void;
}

export function exprContext(p: QueryPlanner, clause: string, hook?: ExprContext["hook"]): ExprContext {
  return { registry: p.registry, clause, hook };
}

export function requalify(scope: Scope, qualifier: string): Scope {
  return { columns: scope.columns.map((c) => ({ ...c, qualifier })), label: `\`${qualifier}\`` };
}

export function fieldsOf(scope: Scope): Field[] {
  return scope.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable }));
}

/** A copy of `e` with its column indices mapped (`f` also sees every index, to find which it uses). */
export function mapColumns(e: Expr, f: (index: number) => number): Expr {
  return replaceColumns(e, (c) => ({ ...c, index: f(c.index) }));
}

/** Adds the column indices `e` reads to `into` (nothing for an absent expression). */
export function columnsUsed(e: Expr | undefined, into: Set<number>): void {
  if (e) mapColumns(e, (i) => (into.add(i), i));
}

/** Which sides of a joined row (`leftWidth` left columns, then the right's) `e` reads. */
export function joinSideOf(e: Expr, leftWidth: number): "left" | "right" | "both" | "none" {
  let l = false;
  let r = false;
  mapColumns(e, (i) => ((i < leftWidth ? (l = true) : (r = true)), i));
  return l && r ? "both" : l ? "left" : r ? "right" : "none";
}

/** A copy of `e` with each column reference replaced by `f`'s expression. */
export function replaceColumns(e: Expr, f: (column: Extract<Expr, { kind: "column" }>) => Expr): Expr {
  switch (e.kind) {
    case "column":
      return f(e);
    case "field":
    case "cast":
      return { ...e, expr: replaceColumns(e.expr, f) };
    case "call":
    case "udf":
      return { ...e, args: e.args.map((a) => replaceColumns(a, f)) };
    case "case":
      return {
        ...e,
        operand: e.operand && replaceColumns(e.operand, f),
        whens: e.whens.map((w) => ({ when: replaceColumns(w.when, f), then: replaceColumns(w.then, f) })),
        otherwise: e.otherwise && replaceColumns(e.otherwise, f),
      };
    default:
      return e;
  }
}

export function columnRef(scope: Scope, index: number): Expr {
  const c = scope.columns[index]!;
  return { kind: "column", index, name: c.name, type: c.type };
}

export function mapNode(input: PlanNode, exprs: Expr[], filter: Expr | undefined, fields: Field[]): PlanNode {
  return { kind: "map", input, exprs, filter, schema: { fields }, updating: input.updating };
}

/** Keeps the rows of `input` (with columns `scope`) that pass `filter`, unchanged. */
export function filterNode(input: PlanNode, scope: Scope, filter: Expr): PlanNode {
  const identity: Expr[] = scope.columns.map((_, i) => columnRef(scope, i));
  return mapNode(input, identity, filter, fieldsOf(scope));
}

export function and(conjuncts: Expr[]): Expr {
  return conjuncts.reduce((a, b): Expr => ({ kind: "call", name: "and", args: [a, b], type: { kind: "boolean" } }));
}
