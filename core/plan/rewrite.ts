/**
 * Bottom-up rewriting of a pipeline's plan, for planner passes: each node is
 * visited once, after its inputs, so a subplan shared by several consumers (a
 * view read twice) stays one shared node.
 */
import type { LogicalPipeline, PlanNode } from "./logical.ts";

/** `node` with its inputs replaced by `visit`'s results (the same object when none changed). */
function withInputs(node: PlanNode, visit: (n: PlanNode) => PlanNode): PlanNode {
  switch (node.kind) {
    case "source":
      return node;
    case "union": {
      const inputs = node.inputs.map(visit);
      return inputs.every((n, i) => n === node.inputs[i]) ? node : { ...node, inputs };
    }
    case "join": {
      const left = visit(node.left);
      const right = visit(node.right);
      return left === node.left && right === node.right ? node : { ...node, left, right };
    }
    default: {
      const input = visit(node.input);
      return input === node.input ? node : ({ ...node, input } as PlanNode);
    }
  }
}

/** Replaces every node by `rewrite(node)`, where `node`'s inputs are already rewritten; sinks get the results. */
export function rewritePlan(pipeline: LogicalPipeline, rewrite: (node: PlanNode) => PlanNode): void {
  const done = new Map<PlanNode, PlanNode>();
  const visit = (node: PlanNode): PlanNode => {
    let out = done.get(node);
    if (!out) done.set(node, (out = rewrite(withInputs(node, visit))));
    return out;
  };
  for (const sink of pipeline.sinks) sink.input = visit(sink.input);
}

/** A node's inputs, in order. */
export function inputsOf(node: PlanNode): PlanNode[] {
  if (node.kind === "source") return [];
  if (node.kind === "union") return node.inputs;
  if (node.kind === "join") return [node.left, node.right];
  return [node.input];
}

/** The source nodes a plan reads. */
export function sourcesOf(node: PlanNode, out = new Set<PlanNode>()): Set<PlanNode> {
  if (node.kind === "source") out.add(node);
  else if (node.kind === "union") node.inputs.forEach((n) => sourcesOf(n, out));
  else if (node.kind === "join") sourcesOf(node.left, out), sourcesOf(node.right, out);
  else sourcesOf(node.input, out);
  return out;
}

/** How many nodes (and sinks) read each node. */
export function consumerCounts(pipeline: LogicalPipeline): Map<PlanNode, number> {
  const counts = new Map<PlanNode, number>();
  const walk = (node: PlanNode) => {
    const n = (counts.get(node) ?? 0) + 1;
    counts.set(node, n);
    if (n === 1) inputsOf(node).forEach(walk);
  };
  for (const sink of pipeline.sinks) walk(sink.input);
  return counts;
}

/**
 * Rewrites until nothing changes, for passes that move work one level down per
 * round: a node rebuilt in a round is not counted yet, so `only` (one consumer)
 * is false for it until the next round.
 */
export function rewriteInRounds(pipeline: LogicalPipeline, rewrite: (node: PlanNode, only: (n: PlanNode) => boolean) => PlanNode): void {
  for (let round = 0; round < 64; round++) {
    const counts = consumerCounts(pipeline);
    const only = (n: PlanNode) => counts.get(n) === 1;
    let changed = false;
    rewritePlan(pipeline, (node) => {
      const out = rewrite(node, only);
      if (out !== node) changed = true;
      return out;
    });
    if (!changed) return;
  }
}
