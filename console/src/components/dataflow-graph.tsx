/**
 * The dataflow graph, laid out by dagre (top to bottom), each operator with its
 * parallelism and, when metrics are given, records in/out per second, totals,
 * watermark and lag, its backpressure as colour and, when placement is given,
 * the workers its subtasks run on. A table below says the same for screen
 * readers and narrow screens.
 */
import { useMemo } from "react";
import dagre from "@dagrejs/dagre";
import { backpressureLevel, type JobMetricsView, type OperatorView } from "../lib/metrics.ts";
import { fmtCount, fmtDurationMs, fmtRate, fmtTime } from "../lib/format.ts";
import type { SubtaskPlacement } from "../lib/placement.ts";

export interface GraphNodeInfo {
  id: string;
  label: string;
  parallelism: number;
  inputs: readonly string[];
}

const WIDTH = 250;
const HEIGHT_PLAIN = 32;
const HEIGHT_LIVE = 104;
const KEYED = /-(window_aggregate|updating_aggregate|join)$/;

export function DataflowGraph(props: { nodes: readonly GraphNodeInfo[]; metrics?: JobMetricsView | null; placement?: Map<string, SubtaskPlacement[]>; caption?: string }) {
  const live = props.metrics !== undefined;
  const height = live ? HEIGHT_LIVE : HEIGHT_PLAIN;
  const layout = useMemo(() => {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: "TB", nodesep: 30, ranksep: 44, marginx: 8, marginy: 8 });
    g.setDefaultEdgeLabel(() => ({}));
    for (const n of props.nodes) g.setNode(n.id, { width: WIDTH, height });
    for (const n of props.nodes) for (const i of n.inputs) g.setEdge(i, n.id);
    dagre.layout(g);
    const info = g.graph();
    return {
      width: info.width ?? WIDTH,
      height: info.height ?? height,
      nodes: props.nodes.map((n) => ({ ...n, ...g.node(n.id) })),
      edges: g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points ?? [] })),
    };
  }, [props.nodes, height]);

  const ops = props.metrics?.operators;
  return (
    <figure className="graph">
      <div className="graph-canvas">
        <svg viewBox={`0 0 ${layout.width} ${layout.height}`} width={layout.width} height={layout.height} role="img" aria-label={props.caption ?? "Dataflow graph"}>
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
              <path d="M 0 0 L 10 5 L 0 10 z" className="edge-head" />
            </marker>
          </defs>
          {layout.edges.map((e) => (
            <path
              key={`${e.from}->${e.to}`}
              className={KEYED.test(e.to) ? "edge shuffle" : "edge"}
              d={e.points.map((p: { x: number; y: number }, i: number) => `${i ? "L" : "M"} ${p.x} ${p.y}`).join(" ")}
              markerEnd="url(#arrow)"
            />
          ))}
          {layout.nodes.map((n) => (
            <OperatorBox key={n.id} node={n} x={n.x - WIDTH / 2} y={n.y - height / 2} height={height} op={ops?.get(n.id)} live={live} placement={props.placement?.get(n.id)} />
          ))}
        </svg>
      </div>
      {props.caption && <figcaption>{props.caption}</figcaption>}
      {live && <OperatorTable nodes={props.nodes} metrics={props.metrics ?? null} placement={props.placement} />}
    </figure>
  );
}

/** "worker 0 (host, pid 123)" per subtask, as one line. */
const describePlacement = (list: readonly SubtaskPlacement[]) => list.map((p) => `#${p.subtask} on worker ${p.worker} (${p.host}, pid ${p.pid})`).join("; ");

function OperatorBox(props: { node: GraphNodeInfo; x: number; y: number; height: number; op: OperatorView | undefined; live: boolean; placement?: SubtaskPlacement[] }) {
  const { node, op } = props;
  const level = backpressureLevel(op?.backpressure ?? null);
  const workers = props.placement ? [...new Set(props.placement.map((p) => p.worker))] : [];
  return (
    <g transform={`translate(${props.x}, ${props.y})`} className={`op bp-${level}`} data-operator={node.id}>
      <title>{`${node.label}${op ? `, backpressure ${Math.round((op.backpressure ?? 0) * 100)} %` : ""}${props.placement ? `; subtasks ${describePlacement(props.placement)}` : ""}`}</title>
      <rect width={WIDTH} height={props.height} rx={8} />
      <text x={10} y={20} className="op-title">
        {node.label.length > 30 ? `${node.label.slice(0, 29)}…` : node.label}
      </text>
      <text x={WIDTH - 10} y={20} textAnchor="end" className="op-par">
        ×{node.parallelism}
      </text>
      {props.live && (
        <>
          <text x={10} y={42} className="op-line" data-metric="rates">
            in {fmtRate(op?.inRate)} · out {fmtRate(op?.outRate)}
          </text>
          <text x={10} y={62} className="op-line" data-metric="totals">
            total {fmtCount(op?.recordsIn)} in / {fmtCount(op?.recordsOut)} out
          </text>
          <text x={10} y={82} className="op-line">
            wm {op?.watermark != null ? fmtTime(op.watermark) : "—"}
            {op?.lagMs != null ? ` (lag ${fmtDurationMs(op.lagMs)})` : ""}
          </text>
          <text x={10} y={98} className="op-line small">
            backpressure {op?.backpressure != null ? `${Math.round(op.backpressure * 100)} %` : "—"}
            {workers.length > 0 ? ` · worker${workers.length > 1 ? "s" : ""} ${workers.join(", ")}` : ""}
          </text>
        </>
      )}
    </g>
  );
}

function OperatorTable(props: { nodes: readonly GraphNodeInfo[]; metrics: JobMetricsView | null; placement?: Map<string, SubtaskPlacement[]> }) {
  return (
    <div className="table-wrap">
      <table className="operators">
        <caption>Operators</caption>
        <thead>
          <tr>
            <th scope="col">Operator</th>
            <th scope="col">Parallelism</th>
            <th scope="col">In/s</th>
            <th scope="col">Out/s</th>
            <th scope="col">Records in</th>
            <th scope="col">Records out</th>
            <th scope="col">Watermark</th>
            <th scope="col">Lag</th>
            <th scope="col">Backpressure</th>
            {props.placement && <th scope="col">Subtasks on workers</th>}
          </tr>
        </thead>
        <tbody>
          {props.nodes.map((n) => {
            const op = props.metrics?.operators.get(n.id);
            return (
              <tr key={n.id} data-operator={n.id}>
                <th scope="row">{n.label}</th>
                <td>{op ? op.subtasks.length : n.parallelism}</td>
                <td>{fmtRate(op?.inRate)}</td>
                <td>{fmtRate(op?.outRate)}</td>
                <td data-metric="records-in" data-value={op?.recordsIn ?? ""}>{fmtCount(op?.recordsIn)}</td>
                <td data-metric="records-out" data-value={op?.recordsOut ?? ""}>{fmtCount(op?.recordsOut)}</td>
                <td>{op?.watermark != null ? fmtTime(op.watermark) : "—"}</td>
                <td>{fmtDurationMs(op?.lagMs)}</td>
                <td className={`bp-cell bp-${backpressureLevel(op?.backpressure ?? null)}`}>{op?.backpressure != null ? `${Math.round(op.backpressure * 100)} %` : "—"}</td>
                {props.placement && (
                  <td data-metric="placement">
                    <ul className="placement">
                      {(props.placement.get(n.id) ?? []).map((p) => (
                        <li key={p.subtask} data-subtask={p.subtask} data-worker={p.worker} data-pid={p.pid}>
                          #{p.subtask}: worker {p.worker} <span className="muted">({p.host}, pid {p.pid})</span>
                        </li>
                      ))}
                    </ul>
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
