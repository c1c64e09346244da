/**
 * From the logical plan to a physical graph: one node per plan node, chained
 * into stages where no shuffle is needed (source → map → sink run in one
 * subtask), a hash shuffle on the group key in front of every aggregate.
 * Where that shuffle crosses subtasks into a window aggregate whose calls all
 * merge, a combiner chained before it sends partials instead of rows
 * (core/operators/window-combine.ts); into a windowed top-N by RANK or
 * DENSE_RANK, a prefilter sends only each batch's local top N
 * (core/operators/rank-prefilter.ts).
 */
import type { LogicalPipeline, PlanNode, SinkTarget, TableDef } from "../plan/logical.ts";

/**
 * `window_combine` and `rank_prefilter`: a window aggregate's pre-aggregation and a windowed top-N's
 * local top N, on the sending side of their shuffle; their `plan` is that of the operator they feed.
 */
export type PhysicalKind = "source" | "changelog" | "map" | "async_udf" | "window_aggregate" | "window_combine" | "window_function" | "rank_prefilter" | "updating_aggregate" | "union" | "unnest" | "join" | "lookup_join" | "sink";

export interface PhysicalNode {
  /** Stable across runs of the same pipeline: checkpoint state is keyed by it. */
  id: string;
  kind: PhysicalKind;
  label: string;
  plan: PlanNode | null;
  sink: SinkTarget | null;
  parallelism: number;
  inputs: PhysicalNode[];
  consumers: PhysicalNode[];
  /** Whether input must be hash-partitioned by the group key (a join's: by each input's join key). */
  keyed: boolean;
}

export interface Stage {
  id: string;
  /** Nodes run in one subtask, head first. */
  nodes: PhysicalNode[];
  parallelism: number;
  /** Stages feeding the head node. */
  inputs: Stage[];
}

export interface PhysicalGraph {
  nodes: PhysicalNode[];
  stages: Stage[];
  fingerprint: string;
}

export interface GraphOptions {
  parallelism: number;
  /** Highest parallelism a sink connector supports (e.g. a single file: 1). */
  sinkMaxParallelism(table: TableDef | null): number | undefined;
  /**
   * Whether a window aggregate's calls can be pre-aggregated before its shuffle (core/operators/window-combine.ts);
   * absent: no combiners, nor top-N prefilters.
   */
  combinable?(plan: Extract<PlanNode, { kind: "window_aggregate" }>): boolean;
}

function labelOf(node: PlanNode): string {
  switch (node.kind) {
    case "source":
      return `source ${node.table.name} (${node.table.connector ?? "memory"})`;
    case "map":
      return node.filter ? "filter+project" : "project";
    case "window_aggregate": {
      const w = node.window;
      const spec = w.kind === "hop" ? `hop ${w.slide}µs/${w.width}µs` : w.kind === "tumble" ? `tumble ${w.width}µs` : `session gap ${w.gap}µs`;
      return `${spec} aggregate by ${node.keys.length} key(s)`;
    }
    case "updating_aggregate":
      return `updating aggregate by ${node.keys.length} key(s)`;
    case "window_function":
      if (node.deduplicate) return `deduplicate (first row by ORDER BY) per partition of ${node.partition.length} key(s)`;
      return `${node.limit ? `top ${node.limit.n} by ${node.limit.by}` : "window functions"} per partition of ${node.partition.length} key(s)`;
    case "changelog":
      return `changelog by primary key (${node.keys.map((k) => (k.kind === "column" ? k.name : "expr")).join(", ")})`;
    case "async_udf":
      return `async ${node.calls.map((c) => `${c.name}()`).join(", ")}`;
    case "union":
      return "union all";
    case "unnest":
      return "unnest";
    case "lookup_join":
      return `${node.joinType} lookup join with ${node.table.name} (${node.table.connector})`;
    case "join": {
      const how = `${node.joinType} join on ${node.leftKeys.length} key(s)${node.condition ? " and a condition" : ""}`;
      return node.window ? `window ${how}` : `updating ${how}`;
    }
  }
}

export function buildGraph(pipeline: LogicalPipeline, options: GraphOptions): PhysicalGraph {
  const nodes: PhysicalNode[] = [];
  const byPlan = new Map<PlanNode, PhysicalNode>();

  const visit = (plan: PlanNode): PhysicalNode => {
    const existing = byPlan.get(plan);
    if (existing) return existing;
    const inputs =
      plan.kind === "source"
        ? []
        : plan.kind === "union"
          ? plan.inputs.map(visit)
          : plan.kind === "join"
            ? [visit(plan.left), visit(plan.right)]
            : [visit(plan.input)];
    const node: PhysicalNode = {
      id: `${nodes.length}-${plan.kind}`,
      kind: plan.kind,
      label: labelOf(plan),
      plan,
      sink: null,
      parallelism: options.parallelism,
      inputs,
      consumers: [],
      keyed: plan.kind === "window_aggregate" || plan.kind === "updating_aggregate" || plan.kind === "join" || plan.kind === "changelog" || plan.kind === "window_function",
    };
    for (const i of inputs) i.consumers.push(node);
    nodes.push(node);
    byPlan.set(plan, node);
    return node;
  };

  for (const target of pipeline.sinks) {
    const input = visit(target.input);
    const max = options.sinkMaxParallelism(target.table);
    const node: PhysicalNode = {
      id: `${nodes.length}-sink`,
      kind: "sink",
      label: target.table ? `sink ${target.table.name} (${target.table.connector})` : "preview output",
      plan: null,
      sink: target,
      parallelism: target.table === null ? 1 : Math.min(options.parallelism, max ?? options.parallelism),
      inputs: [input],
      consumers: [],
      keyed: false,
    };
    input.consumers.push(node);
    nodes.push(node);
  }

  if (options.combinable) insertPreShuffle(nodes, options.combinable);

  // Chain a node into its input's stage when nothing needs redistributing.
  const stageOf = new Map<PhysicalNode, Stage>();
  const stages: Stage[] = [];
  for (const node of nodes) {
    const only = node.inputs.length === 1 ? node.inputs[0]! : null;
    if (
      only &&
      !node.keyed &&
      only.consumers.length === 1 &&
      only.parallelism === node.parallelism &&
      stageOf.has(only)
    ) {
      const stage = stageOf.get(only)!;
      stage.nodes.push(node);
      stageOf.set(node, stage);
      continue;
    }
    const stage: Stage = {
      id: `stage-${stages.length}`,
      nodes: [node],
      parallelism: node.parallelism,
      inputs: node.inputs.map((i) => stageOf.get(i)!),
    };
    stages.push(stage);
    stageOf.set(node, stage);
  }

  const fingerprint = Bun.hash(
    JSON.stringify(
      nodes.map((n) => [n.id, n.label, n.plan?.schema.fields.map((f) => f.name) ?? n.sink?.table?.name ?? "preview"]),
    ),
  ).toString(16);
  return { nodes, stages, fingerprint };
}

/**
 * A combiner before each window aggregate, and a prefilter before each
 * windowed top-N by RANK or DENSE_RANK, whose shuffle crosses subtasks, where
 * it chains into the sending stage (its input feeds nothing else, at the same
 * parallelism). Its id shares the number of the node it feeds, so the other
 * nodes' ids, and everything at parallelism 1, stay as they were.
 */
function insertPreShuffle(nodes: PhysicalNode[], combinable: NonNullable<GraphOptions["combinable"]>): void {
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i]!;
    const plan = node.plan;
    let kind: "window_combine" | "rank_prefilter";
    let label: string;
    if (plan?.kind === "window_aggregate" && !plan.input.updating && combinable(plan)) {
      kind = "window_combine";
      label = `combine rows per key ${plan.window.kind === "session" ? "into partial sessions" : "and pane"} before the shuffle (${node.label})`;
    } else if (plan?.kind === "window_function" && !plan.updating && !plan.deduplicate && plan.limit && plan.limit.by !== "row_number") {
      kind = "rank_prefilter";
      label = `local top ${plan.limit.n} by ${plan.limit.by} before the shuffle`;
    } else continue;
    const input = node.inputs[0]!;
    if (node.parallelism < 2 || input.parallelism !== node.parallelism || input.consumers.length !== 1) continue;
    const before: PhysicalNode = { id: node.id.replace(/-[a-z_]+$/, `-${kind}`), kind, label, plan, sink: null, parallelism: node.parallelism, inputs: [input], consumers: [node], keyed: false };
    input.consumers[0] = before;
    node.inputs[0] = before;
    nodes.splice(i, 0, before);
    i++;
  }
}

const PRE_SHUFFLE_NOTE: Record<string, string> = { window_combine: ", partials", rank_prefilter: ", local top-N" };

/** A readable picture of the graph for the CLI and the API. */
export function describeGraph(graph: PhysicalGraph): string {
  const lines: string[] = [];
  for (const stage of graph.stages) {
    const from = stage.inputs.length
      ? ` ← ${stage.inputs.map((s) => s.id).join(", ")}${stage.nodes[0]!.keyed ? ` (hash shuffle on ${stage.nodes[0]!.kind === "join" ? "join" : "group"} key${PRE_SHUFFLE_NOTE[stage.nodes[0]!.inputs[0]?.kind ?? ""] ?? ""})` : ""}`
      : "";
    lines.push(`${stage.id} ×${stage.parallelism}${from}`);
    for (const n of stage.nodes) lines.push(`  ${n.id}: ${n.label}`);
  }
  return lines.join("\n");
}
