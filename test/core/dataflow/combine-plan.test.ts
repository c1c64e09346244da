/**
 * Where the physical plan puts a window aggregate's combiner: chained into the
 * sending stage at parallelism > 1 for tumble, hop and session aggregates
 * whose calls all merge; nowhere at parallelism 1 (the plan is the one without
 * it), nor for DISTINCT, other library aggregates or UDAFs without merge;
 * likewise a windowed top-N's local top-N by RANK/DENSE_RANK.
 * The aggregate keeps its state identity either way, so checkpoints restore
 * across the change.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeGraph } from "../../../core/dataflow/graph.ts";
import { Job } from "../../../core/dataflow/job.ts";
import { definePlugin, t } from "../../../core/plugin-api/index.ts";
import type { PluginRegistry } from "../../../core/registry/registry.ts";
import { planSql } from "../../../core/sql/index.ts";
import { runnelTables, testRegistry } from "../../kit/sql.ts";

let registry: PluginRegistry;

async function udafRegistry(): Promise<PluginRegistry> {
  if (registry) return registry;
  registry = (await testRegistry()).clone();
  const base = { args: [t.bigint()], returns: t.bigint(), init: () => 0, add: (s: number, v: number) => Math.max(s, v ?? 0), result: (s: number) => s };
  registry.register(definePlugin({ name: "combine-plan-udafs", udafs: [{ ...base, name: "merging_max", merge: (a: number, b: number) => Math.max(a, b) }, { ...base, name: "unmerged_max" }] }));
  return registry;
}

// One dataset name for every plan, so sources (and what they feed) keep their state identities between plans.
const TABLE = () =>
  (table ??= `${runnelTables([{ name: "events", columns: [{ name: "k", type: "BIGINT" }, { name: "v", type: "BIGINT" }, { name: "ts", type: "TIMESTAMP" }], rows: [], watermark: "ts" }])}
CREATE TABLE out WITH (connector = 'blackhole');`);
let table: string | undefined;

async function graph(select: string, parallelism: number, combine?: boolean) {
  const reg = await udafRegistry();
  const pipeline = planSql(`${TABLE()}\nINSERT INTO out ${select};`, reg);
  const job = new Job(pipeline, reg, { parallelism, combine, stateDir: mkdtempSync(join(tmpdir(), "runnel-combine-plan-")), checkpointIntervalMs: 0 });
  return { graph: job.graph, text: describeGraph(job.graph), labels: job.stateLabels() };
}

/** A window aggregate of `calls` per k, read by an outer query. */
const q = (calls: string[], window = "tumble(INTERVAL '1' SECOND)") =>
  `SELECT k, window.start AS ws, ${calls.map((_, i) => `a${i}`).join(", ")} FROM (
     SELECT k, ${window} AS window, ${calls.map((c, i) => `${c} AS a${i}`).join(", ")} FROM events GROUP BY k, window)`;

const combiners = (g: Awaited<ReturnType<typeof graph>>) => g.graph.nodes.filter((n) => n.kind === "window_combine");

describe("the combiner in the physical plan", () => {
  test("at parallelism 2 a tumble, hop or session aggregate of count/sum/min/max/avg gets one, chained before the shuffle", async () => {
    for (const window of ["tumble(INTERVAL '1' SECOND)", "hop(INTERVAL '1' SECOND, INTERVAL '4' SECOND)", "session(INTERVAL '1' SECOND)"]) {
      const g = await graph(q(["count(*)", "sum(v)", "min(v)", "max(v)", "avg(v)", "count(*) FILTER (WHERE v > 3)", "merging_max(v)"], window), 2);
      const [c] = combiners(g);
      expect(c).toBeDefined();
      const stage = g.graph.stages.find((s) => s.nodes.includes(c!))!;
      expect(stage.nodes[0]!.kind).toBe("source");
      const aggregate = c!.consumers[0]!;
      expect(aggregate.kind).toBe("window_aggregate");
      const aggStage = g.graph.stages.find((s) => s.nodes[0] === aggregate)!;
      expect(aggStage.inputs).toEqual([stage]);
      expect(g.text).toContain("(hash shuffle on group key, partials)");
      expect(c!.label).toContain(window.startsWith("session") ? "into partial sessions" : "and pane");
    }
  });

  test("at parallelism 1 the plan is the one without a combiner", async () => {
    for (const window of ["tumble(INTERVAL '1' SECOND)", "session(INTERVAL '1' SECOND)"]) {
      const select = q(["count(*)", "sum(v)"], window);
      const one = await graph(select, 1);
      expect(combiners(one)).toEqual([]);
      const off = await graph(select, 1, false);
      expect(one.text).toBe(off.text);
      expect(one.graph.fingerprint).toBe(off.graph.fingerprint);
    }
  });

  test("not for DISTINCT, other library aggregates or a UDAF without merge", async () => {
    for (const select of [
      q(["count(DISTINCT v)"]),
      q(["count(*)", "unmerged_max(v)"], "session(INTERVAL '1' SECOND)"),
      q(["count(*)", "stddev_samp(v)"]),
      q(["count(*)", "unmerged_max(v)"]),
    ]) {
      const g = await graph(select, 2);
      expect(combiners(g)).toEqual([]);
      expect(g.text).not.toContain("partials");
    }
  });

  test("a windowed top-N by rank or dense_rank at parallelism 2 gets a local top-N before its shuffle; by row_number, or at parallelism 1, not", async () => {
    const topN = (fn: string, n: number) => `SELECT k, a0 FROM (
      SELECT k, a0, ${fn}() OVER (PARTITION BY window ORDER BY a0 DESC) AS r FROM (
        SELECT k, tumble(INTERVAL '1' SECOND) AS window, count(*) AS a0 FROM events GROUP BY k, window))
      WHERE r <= ${n}`;
    const prefilters = (g: Awaited<ReturnType<typeof graph>>) => g.graph.nodes.filter((n) => n.kind === "rank_prefilter");
    for (const fn of ["rank", "dense_rank"]) {
      const g = await graph(topN(fn, 2), 2);
      const [p] = prefilters(g);
      expect(p?.consumers[0]?.kind).toBe("window_function");
      expect(g.text).toContain("(hash shuffle on group key, local top-N)");
      // Chained after the aggregate that feeds it, in that aggregate's stage.
      const stage = g.graph.stages.find((s) => s.nodes.includes(p!))!;
      expect(stage.nodes[0]!.kind).toBe("window_aggregate");
      expect(prefilters(await graph(topN(fn, 2), 1))).toEqual([]);
    }
    expect(prefilters(await graph(topN("row_number", 2), 2))).toEqual([]);
    expect(prefilters(await graph(topN("rank", 2), 2, false))).toEqual([]);
  });

  test("off by option; the aggregate's state identity is the same with and without it, the other nodes keep their ids", async () => {
    for (const window of ["tumble(INTERVAL '1' SECOND)", "session(INTERVAL '1' SECOND)"]) {
      const select = q(["count(*)", "sum(v)"], window);
      const on = await graph(select, 2);
      const off = await graph(select, 2, false);
      expect(combiners(off)).toEqual([]);
      expect(combiners(on).length).toBe(1);
      const ids = (g: typeof on) => g.graph.nodes.filter((n) => n.kind !== "window_combine").map((n) => n.id);
      expect(ids(on)).toEqual(ids(off));
      // Every operator of the plan without the combiner keeps its state id, so a checkpoint of either restores into the other.
      const offIds = Object.keys(off.labels);
      expect(offIds.every((id) => id in on.labels)).toBe(true);
      expect(Object.keys(on.labels).filter((id) => !(id in off.labels)).every((id) => /^(window_combine|rank_prefilter)-/.test(id))).toBe(true);
    }
  });
});
