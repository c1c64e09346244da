/**
 * A job's worker process: plans the pipeline, runs the engine, and talks to the
 * control plane over IPC — heartbeats with metrics, completed checkpoints,
 * preview rows (published only when the checkpoint that covers them completes,
 * so a restart never shows a row twice), and how the run ended. Checkpoints are
 * paced by the control plane. If the control plane goes away, the worker stops
 * immediately; the next owner restores from the last checkpoint.
 */
import { join } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { Job, JobError, type JobOptions } from "../../core/dataflow/job.ts";
import { JobManager } from "../../core/cluster/manager.ts";
import { describeGraph } from "../../core/dataflow/graph.ts";
import { createRegistry } from "../../core/registry/loader.ts";
import { planSql, SqlError, formatSqlError } from "../../core/sql/index.ts";
import type { Field, SinkWriter } from "../../core/plugin-api/index.ts";
import type { PluginRegistry } from "../../core/registry/registry.ts";
import { createPreviewWriter } from "../../core/cli/preview.ts";
import { envPolicy, filePolicy } from "../security/policies.ts";
import type { ClusterPlanHost, ControlMessage, OperatorMetricsMessage, TaskPlacement, WorkerConfig, WorkerMessage } from "./protocol.ts";
import { loadUdfs } from "./udf-modules.ts";

const send = (m: WorkerMessage) => process.send?.(m);
/** Preview writers in creation order (one per subtask), so a re-commit is recognisable. */
let previewWriters = 0;
/** For the failure report. */
let workerConfig: WorkerConfig | null = null;

async function main(): Promise<void> {
  // Checkpoints and anything else this worker writes are for the control plane's user alone.
  process.umask(0o077);
  // The configuration (with the secrets of the profiles it uses) comes on stdin, not in the environment.
  const text = await Bun.stdin.text();
  if (!text.trim()) throw new Error("no configuration on stdin; workers are started by the control plane");
  const config = JSON.parse(text) as WorkerConfig;
  workerConfig = config;
  const registry = await createRegistry();
  // UDF modules are imported from local files, wherever the checkpoints live.
  const udfDir = mkdtempSync(join(tmpdir(), `runnel-udfs-${config.jobId}-`));
  process.on("exit", () => rmSync(udfDir, { recursive: true, force: true }));
  await loadUdfs(registry, config.udfs, udfDir);
  const files = filePolicy(config.fileRoots);
  const profiles = config.profiles;
  const pipeline = planSql(config.query, registry, {
    env: config.env,
    envPolicy: envPolicy(config.envAllowlist),
    connectionProfile: (name) => profiles[name],
    files,
  });

  const options: JobOptions = {
    jobId: config.jobId,
    parallelism: config.parallelism,
    stateDir: config.stateDir,
    ignoreState: config.ignoreState,
    checkpointIntervalMs: 0,
    files,
    preview: (fields, updating) => transactionalPreview(registry, fields, updating),
    log: { info: (m) => console.error(m), warn: (m) => console.error(m) },
  };
  // Preview rows are published from this process, so a pipeline with preview output runs in it alone.
  const hasPreview = pipeline.sinks.some((s) => s.table === null);
  const workers = hasPreview ? 1 : config.workers;
  let job: Job | JobManager;
  if (workers > 1) {
    const scheduler = registry.scheduler(config.scheduler);
    if (!scheduler) throw new Error(`no scheduler '${config.scheduler}' (RUNNEL_SCHEDULER); available: ${[...registry.schedulers.keys()].join(", ")}`);
    const host: ClusterPlanHost = { profiles, envAllowlist: config.envAllowlist, fileRoots: config.fileRoots };
    job = new JobManager(pipeline, registry, options, {
      sql: config.query,
      plan: { env: config.env, udfs: config.udfs, host },
      workers,
      scheduler,
      // Pods on other machines reach a manager that listens beyond loopback (connections need the job's secret).
      listen: config.scheduler === "process" ? undefined : "0.0.0.0:0",
      workerCommand: [process.execPath, join(import.meta.dir, "cluster-worker.ts"), config.jobId],
    });
  } else {
    job = new Job(pipeline, registry, options);
  }
  send({ type: "planned", tasks: job.graph.stages.reduce((n, s) => n + s.parallelism, 0), graph: describeGraph(job.graph) });

  let lastReported = 0;
  let placementSent = "";
  const heartbeat = () => {
    const placement = placementOf(job);
    const key = JSON.stringify(placement);
    if (placementSent && key !== placementSent) send({ type: "placement", placement });
    if (placementSent) placementSent = key;
    const cp = job.metrics.lastCheckpoint;
    if (cp && cp.id > lastReported) {
      lastReported = cp.id;
      // The checkpoint says whether it was the final one: a periodic heartbeat may report it before the run returns.
      send({ type: "checkpoint", checkpointId: cp.id, at: cp.at, durationMs: cp.durationMs, alignmentMs: cp.alignmentMs, bytes: cp.bytes, then: cp.then });
    }
    // OperatorMetrics carries the message's fields; IPC serialises it as JSON.
    send({ type: "heartbeat", metrics: job.metrics.operators as OperatorMetricsMessage[] });
  };
  const timer = setInterval(() => heartbeat(), config.heartbeatMs);

  process.on("message", (m: ControlMessage) => {
    if (m.type === "checkpoint") job.checkpoint();
    else if (m.type === "stop" && m.mode === "checkpoint") job.stop();
    else if (m.type === "stop") process.exit(0);
  });
  // Orphaned (the control plane died): stop at once; the next owner restores from the last checkpoint.
  process.on("disconnect", () => process.exit(0));

  const running = job.run();
  await Promise.race([job.started, running]);
  const placement = placementOf(job);
  placementSent = JSON.stringify(placement);
  send({ type: "running", restoredCheckpoint: job.restoredCheckpoint, placement });
  const outcome = await running;
  clearInterval(timer);
  heartbeat();
  if (outcome === "end") send({ type: "finished" });
  else send({ type: "stopped", checkpointId: job.lastCheckpoint?.id ?? null });
  // The IPC channel would keep the process alive; leave once the last message is out.
  setTimeout(() => process.exit(0), 50);
}

/** Where each subtask runs: the job manager's placement, or every task in this process. */
function placementOf(job: Job | JobManager): TaskPlacement[] {
  if (job instanceof JobManager) return job.placement;
  return job.graph.stages.flatMap((s) => Array.from({ length: s.parallelism }, (_, i) => ({ task: `${s.id}/${i}`, worker: 0, host: hostname(), pid: process.pid })));
}

/**
 * The CLI's preview writer, staged: rows written between barriers are held and
 * published when the checkpoint covering them completes (two-phase, like any
 * exactly-once sink).
 */
function transactionalPreview(registry: PluginRegistry, fields: Field[], updating: boolean): SinkWriter {
  let staged: string[] = [];
  const writer = previewWriters++;
  const preview = createPreviewWriter(registry, fields, updating, { write: (text: string) => staged.push(text) });
  return {
    write: (batch) => preview.write(batch),
    prepareCommit() {
      const lines = staged.join("").split("\n").filter(Boolean);
      staged = [];
      return { lines };
    },
    commit(checkpointId, prepared) {
      const lines = (prepared as { lines: string[] }).lines;
      if (lines.length > 0) send({ type: "output", checkpointId, writer, lines });
    },
  };
}

main().catch((err) => {
  const userError = err instanceof SqlError || err instanceof JobError || err?.name === "UdfDefinitionError";
  const message = err instanceof SqlError && workerConfig ? formatSqlError(err, workerConfig.query) : err instanceof Error ? err.message : String(err);
  if (!userError) console.error(err);
  send({ type: "failed", message, userError });
  // Let the IPC message leave before exiting.
  setTimeout(() => process.exit(1), 50);
});
