/**
 * Per-operator rates from the cumulative counters the API sends: the
 * difference between two samples over the time between them, summed over an
 * operator's subtasks. Counters restart with a new worker (after a restart or
 * rescale); a sample lower than the last one starts counting afresh.
 */
import { useRef } from "react";
import { useSubscription } from "urql";
import { graphql, type ResultOf } from "../graphql.ts";

export const JobMetricsSubscription = graphql(`
  subscription JobMetrics($jobId: ID!, $intervalMs: Int) {
    jobMetrics(jobId: $jobId, intervalMs: $intervalMs) {
      at
      operators {
        operatorId
        operatorName
        subtaskIndex
        recordsIn
        recordsOut
        watermark
        backpressureMs
        lateDropped
        badRecords
        worker
      }
    }
  }
`);

type Sample = ResultOf<typeof JobMetricsSubscription>["jobMetrics"];
type SubtaskSample = Sample["operators"][number];

export interface SubtaskView {
  index: number;
  recordsIn: number;
  recordsOut: number;
  watermark: number | null;
  backpressure: number | null;
  /** The index of the worker process running it. */
  worker: number;
}

export interface OperatorView {
  id: string;
  name: string;
  subtasks: SubtaskView[];
  recordsIn: number;
  recordsOut: number;
  inRate: number | null;
  outRate: number | null;
  /** The lowest watermark of its subtasks (µs of event time), null before every subtask has one. */
  watermark: number | null;
  /** How far the watermark trails the time of the sample, in ms. */
  lagMs: number | null;
  /** Share of the last interval its subtasks spent waiting for downstream (0–1), averaged. */
  backpressure: number | null;
  lateDropped: number;
  badRecords: number;
}

export interface JobMetricsView {
  at: number;
  operators: Map<string, OperatorView>;
  /** Records read by the sources and written by the sinks, per second. */
  inRate: number | null;
  outRate: number | null;
  /**
   * Changes when a subtask moves to another worker or its counters restart (a
   * new process): the job's placement is worth reading again.
   */
  processes: string;
}

const key = (m: SubtaskSample) => `${m.operatorId}/${m.subtaskIndex}`;

export function summarize(sample: Sample, previous: Sample | null, previousView: JobMetricsView | null = null): JobMetricsView {
  const prev = new Map(previous?.operators.map((m) => [key(m), m]) ?? []);
  const dtMs = previous ? (sample.at - previous.at) / 1000 : 0;
  const ops = new Map<string, OperatorView>();
  let restarted = false;
  for (const m of sample.operators) {
    let op = ops.get(m.operatorId);
    if (!op) {
      op = { id: m.operatorId, name: m.operatorName, subtasks: [], recordsIn: 0, recordsOut: 0, inRate: null, outRate: null, watermark: null, lagMs: null, backpressure: null, lateDropped: 0, badRecords: 0 };
      ops.set(m.operatorId, op);
    }
    const p = prev.get(key(m));
    const fresh = p && dtMs > 0 && m.recordsIn >= p.recordsIn && m.recordsOut >= p.recordsOut && m.backpressureMs >= p.backpressureMs;
    const rateIn = fresh ? ((m.recordsIn - p.recordsIn) * 1000) / dtMs : null;
    const rateOut = fresh ? ((m.recordsOut - p.recordsOut) * 1000) / dtMs : null;
    const bp = fresh ? Math.min(1, (m.backpressureMs - p.backpressureMs) / dtMs) : null;
    if (p && (m.recordsIn < p.recordsIn || m.recordsOut < p.recordsOut)) restarted = true;
    op.subtasks.push({ index: m.subtaskIndex, recordsIn: m.recordsIn, recordsOut: m.recordsOut, watermark: m.watermark ?? null, backpressure: bp, worker: m.worker });
    op.recordsIn += m.recordsIn;
    op.recordsOut += m.recordsOut;
    op.lateDropped += m.lateDropped;
    op.badRecords += m.badRecords;
    if (rateIn !== null) op.inRate = (op.inRate ?? 0) + rateIn;
    if (rateOut !== null) op.outRate = (op.outRate ?? 0) + rateOut;
  }
  let inRate: number | null = null;
  let outRate: number | null = null;
  for (const op of ops.values()) {
    op.subtasks.sort((a, b) => a.index - b.index);
    const wms = op.subtasks.map((s) => s.watermark);
    op.watermark = wms.every((w) => w !== null) && wms.length ? Math.min(...(wms as number[])) : null;
    op.lagMs = op.watermark === null ? null : Math.max(0, (sample.at - op.watermark) / 1000);
    const bps = op.subtasks.map((s) => s.backpressure).filter((b): b is number => b !== null);
    op.backpressure = bps.length ? bps.reduce((a, b) => a + b, 0) / bps.length : null;
    // Operator ids are "<n>-<kind>" (core/dataflow/graph.ts).
    if (op.id.endsWith("-source") && op.outRate !== null) inRate = (inRate ?? 0) + op.outRate;
    if (op.id.endsWith("-sink") && op.inRate !== null) outRate = (outRate ?? 0) + op.inRate;
  }
  const workers = sample.operators.map((m) => `${key(m)}@${m.worker}`).sort().join(",");
  const processes = restarted ? `${workers} since ${sample.at}` : previousView && (previousView.processes === workers || previousView.processes.startsWith(`${workers} since `)) ? previousView.processes : workers;
  return { at: sample.at, operators: ops, inRate, outRate, processes };
}

/** Live metrics of a job, over a subscription. */
export function useJobMetrics(jobId: string | null, intervalMs = 1000): JobMetricsView | null {
  const last = useRef<{ sample: Sample; view: JobMetricsView } | null>(null);
  const [{ data }] = useSubscription(
    { query: JobMetricsSubscription, variables: { jobId: jobId ?? "", intervalMs }, pause: !jobId },
    (_view: JobMetricsView | undefined, result) => {
      const sample = result.jobMetrics;
      // urql may hand the same result again (a re-render, a shared operation): rates come from distinct samples only.
      if (last.current && last.current.sample.at === sample.at) return last.current.view;
      const view = summarize(sample, last.current?.sample ?? null, last.current?.view ?? null);
      last.current = { sample, view };
      return view;
    },
  );
  return data ?? null;
}

export type Severity = "ok" | "warn" | "high" | "none";
/** Flink's colours: under 10 % fine, under 50 % worth a look, above that blocked. */
export const backpressureLevel = (bp: number | null): Severity => (bp === null ? "none" : bp < 0.1 ? "ok" : bp < 0.5 ? "warn" : "high");
