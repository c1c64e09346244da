/**
 * Prometheus text for every running job, read from the metrics the driving
 * control plane stores (so any control plane on the database can be scraped).
 */
import { Counter, Gauge, Registry } from "prom-client";
import { eq, inArray } from "drizzle-orm";
import { checkpoints, jobMetrics, jobs } from "./db/schema.ts";
import type { Services } from "./services/context.ts";
import type { OperatorMetricsMessage } from "./jobs/protocol.ts";
import type { Supervisor } from "./jobs/supervisor.ts";

export async function prometheusText(services: Services, supervisor: Supervisor): Promise<{ text: string; contentType: string }> {
  const registry = new Registry();
  const labelNames = ["job_id", "pipeline_id", "operator_id", "operator_name", "subtask", "worker"] as const;
  const counter = (name: string, help: string) => new Counter({ name, help, labelNames, registers: [registry] });
  const messagesIn = counter("runnel_operator_messages_in_total", "Records received by an operator subtask");
  const messagesOut = counter("runnel_operator_messages_out_total", "Records emitted by an operator subtask");
  const bytesIn = counter("runnel_operator_bytes_in_total", "Encoded bytes read by a source subtask's format");
  const bytesOut = counter("runnel_operator_bytes_out_total", "Encoded bytes written by a sink subtask's format");
  const backpressure = counter("runnel_operator_backpressure_seconds_total", "Time an operator subtask waited on full output channels");
  const late = counter("runnel_operator_late_records_total", "Records dropped for arriving behind the watermark");
  const deser = counter("runnel_operator_deserialization_errors_total", "Records a source could not read (bad_data)");
  const stateEntries = new Gauge({ name: "runnel_operator_state_entries", help: "Entries in the subtask's keyed state, as of its last checkpoint", labelNames, registers: [registry] });
  const stateBytes = new Gauge({ name: "runnel_operator_state_bytes", help: "Bytes of state files the subtask's last checkpoint needs to restore it", labelNames, registers: [registry] });
  const workerInfo = new Gauge({ name: "runnel_worker_subtasks", help: "Subtasks a worker process of the job runs (labels: where it is)", labelNames: ["job_id", "pipeline_id", "worker", "host", "pid"], registers: [registry] });
  const lag = new Gauge({ name: "runnel_operator_watermark_lag_seconds", help: "Wall clock minus the subtask's watermark", labelNames, registers: [registry] });
  const jobState = new Gauge({ name: "runnel_job_running", help: "1 for each running job", labelNames: ["job_id", "pipeline_id", "state"], registers: [registry] });
  const cpDuration = new Gauge({ name: "runnel_checkpoint_duration_seconds", help: "Duration of the job's latest completed checkpoint", labelNames: ["job_id", "pipeline_id"], registers: [registry] });
  const cpCount = new Gauge({ name: "runnel_checkpoints_completed", help: "Completed checkpoints recorded for the job", labelNames: ["job_id", "pipeline_id"], registers: [registry] });

  const running = await services.db.select().from(jobs).where(inArray(jobs.state, ["Running", "CheckpointStopping", "Rescaling", "Restarting", "Recovering"]));
  // Connector-reported figures: one family per name, created as names appear.
  const connectorFamilies = new Map<string, Gauge<(typeof labelNames)[number]>>();
  const connectorFamily = (name: string) => {
    const metric = `runnel_connector_${name.replace(/[^a-zA-Z0-9_]/g, "_")}`;
    let g = connectorFamilies.get(metric);
    if (!g) connectorFamilies.set(metric, (g = new Gauge({ name: metric, help: `Reported by the operator's connector (${name})`, labelNames, registers: [registry] })));
    return g;
  };
  const now = Date.now() * 1000;
  for (const job of running) {
    jobState.set({ job_id: job.id, pipeline_id: job.pipelineId, state: job.state }, 1);
    const live = supervisor.metrics.get(job.id)?.operators;
    const stored = live ? null : (await services.db.select().from(jobMetrics).where(eq(jobMetrics.jobId, job.id)))[0];
    const operators = (live ?? (stored?.metrics as OperatorMetricsMessage[] | undefined) ?? []) as OperatorMetricsMessage[];
    for (const m of operators) {
      const labels = { job_id: job.id, pipeline_id: job.pipelineId, operator_id: m.operatorId, operator_name: m.operatorName, subtask: String(m.subtaskIndex), worker: String(m.worker ?? 0) };
      messagesIn.inc(labels, m.recordsIn);
      messagesOut.inc(labels, m.recordsOut);
      bytesIn.inc(labels, m.bytesIn ?? 0);
      bytesOut.inc(labels, m.bytesOut ?? 0);
      backpressure.inc(labels, m.backpressureMs / 1000);
      late.inc(labels, m.lateDropped);
      deser.inc(labels, m.badRecords);
      if (m.watermark !== null && m.watermark < 8e15) lag.set(labels, Math.max(0, (now - m.watermark) / 1e6));
      for (const [name, value] of Object.entries(m.connector ?? {})) connectorFamily(name).set(labels, value);
      stateEntries.set(labels, m.stateEntries ?? 0);
      stateBytes.set(labels, m.stateBytes ?? 0);
    }
    for (const p of job.placement ?? []) workerInfo.inc({ job_id: job.id, pipeline_id: job.pipelineId, worker: String(p.worker), host: p.host, pid: String(p.pid) });
    const cps = await services.db.select().from(checkpoints).where(eq(checkpoints.jobId, job.id));
    if (cps.length) {
      const latest = cps.reduce((a, b) => (a.checkpointId > b.checkpointId ? a : b));
      cpDuration.set({ job_id: job.id, pipeline_id: job.pipelineId }, latest.durationMicros / 1e6);
    }
    cpCount.set({ job_id: job.id, pipeline_id: job.pipelineId }, cps.length);
  }
  return { text: await registry.metrics(), contentType: registry.contentType };
}
