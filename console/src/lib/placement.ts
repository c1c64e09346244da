/**
 * Where each operator's subtasks run. The API places tasks by stage
 * ("stage-1/0": stage and subtask, Job.placement); the graph text the API
 * prints (validateQuery.graph, core/dataflow/graph.ts describeGraph) lists
 * each stage's operators, which maps an operator to its stage.
 */
export interface TaskPlacement {
  task: string;
  worker: number;
  host: string;
  pid: number;
}

export interface SubtaskPlacement extends TaskPlacement {
  subtask: number;
}

/** Operator id → stage id, from the graph text ("stage-0 ×2 ← …" then "  0-source: …" per operator). */
export function stageOfOperators(graph: string | null | undefined): Map<string, string> {
  const out = new Map<string, string>();
  let stage: string | null = null;
  for (const line of (graph ?? "").split("\n")) {
    const head = /^(stage-\d+) ×\d+/.exec(line);
    if (head) stage = head[1]!;
    else if (stage && /^\s+\S+: /.test(line)) out.set(line.trim().split(":")[0]!, stage);
  }
  return out;
}

/** Each operator's subtasks with the worker running them, by subtask index. */
export function placementByOperator(graph: string | null | undefined, placement: readonly TaskPlacement[] | null | undefined): Map<string, SubtaskPlacement[]> {
  const byStage = new Map<string, SubtaskPlacement[]>();
  for (const p of placement ?? []) {
    const [stage, index] = p.task.split("/");
    if (!stage || index === undefined) continue;
    const list = byStage.get(stage) ?? [];
    list.push({ ...p, subtask: Number(index) });
    byStage.set(stage, list);
  }
  for (const list of byStage.values()) list.sort((a, b) => a.subtask - b.subtask);
  const out = new Map<string, SubtaskPlacement[]>();
  for (const [operator, stage] of stageOfOperators(graph)) {
    const list = byStage.get(stage);
    if (list) out.set(operator, list);
  }
  return out;
}

/** The job's worker processes, by index, with the number of subtasks each runs. */
export function workersOf(placement: readonly TaskPlacement[] | null | undefined): { worker: number; host: string; pid: number; tasks: number }[] {
  const out = new Map<number, { worker: number; host: string; pid: number; tasks: number }>();
  for (const p of placement ?? []) {
    const w = out.get(p.worker) ?? { worker: p.worker, host: p.host, pid: p.pid, tasks: 0 };
    w.tasks++;
    out.set(p.worker, w);
  }
  return [...out.values()].sort((a, b) => a.worker - b.worker);
}
