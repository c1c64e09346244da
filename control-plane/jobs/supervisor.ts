/**
 * Drives jobs: each control plane claims jobs through a lease in the database
 * (so with several control planes on one PostgreSQL exactly one drives each
 * job), starts one worker process per running job, paces its checkpoints,
 * watches its heartbeats, and moves the job through its states: restoring
 * from the last checkpoint with backoff when a worker dies, stopping with a
 * checkpoint and starting again to rescale or restart.
 */
import { and, eq, sql } from "drizzle-orm";
import { resolve } from "node:path";
import { childLocation } from "../../core/checkpoint/store.ts";
import type { Subprocess } from "bun";
import { checkpoints, jobEvents, jobMetrics, jobs, pipelines, udfs as udfsTable } from "../db/schema.ts";
import type { Services } from "../services/context.ts";
import { topics } from "../services/events.ts";
import { nowMicros } from "../services/ids.ts";
import { loadProfiles, type JobRow } from "../services/pipelines.ts";
import type { ControlMessage, OperatorMetricsMessage, WorkerConfig, WorkerMessage } from "./protocol.ts";
import { isTerminal, type JobState } from "./states.ts";

const WORKER = resolve(import.meta.dir, "worker.ts");
const OUTPUT_BUFFER = 1000;

type AfterStop = "rescale" | "restart" | null;

interface RunningWorker {
  proc: Subprocess<"ignore", "inherit", "pipe">;
  parallelism: number;
  startedAt: number;
  lastHeartbeat: number;
  lastCheckpointAsked: number;
  stopSent: "checkpoint" | "immediate" | "force" | null;
  afterStop: AfterStop;
  outcome: "finished" | "stopped" | { failed: string; userError: boolean } | null;
  stderrTail: string[];
  exited: Promise<number>;
}

export class Supervisor {
  private readonly workers = new Map<string, RunningWorker>();
  /** Jobs waiting out a restart backoff: job id → time (ms) it may start. */
  private readonly backoff = new Map<string, number>();
  /** Recent metrics per job, for subscriptions and /metrics. */
  readonly metrics = new Map<string, { at: number; operators: OperatorMetricsMessage[] }>();
  /** Recent preview lines per pipeline, so a new subscriber sees the current output first. */
  readonly output = new Map<string, string[]>();
  private readonly queues = new Map<string, Promise<void>>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private ticking = false;
  private stopping = false;
  private lastMetricsWrite = new Map<string, number>();

  constructor(private readonly services: Services) {}

  private get db() {
    return this.services.db;
  }
  private get me() {
    return this.services.settings.instanceId;
  }

  async start(): Promise<void> {
    // Output published by any control plane (this one included) fills the buffers new subscribers see first.
    this.services.events.subscribePrefix("output:", (topic, payload) => {
      if (Array.isArray(payload?.lines)) this.appendOutput(topic.slice("output:".length), payload.lines);
    });
    await this.tick();
    this.timer = setInterval(() => void this.tick(), 250);
  }

  /** Shuts this control plane down: workers stop at once and leases are released; jobs resume from checkpoints elsewhere or at the next start. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    while (this.ticking) await Bun.sleep(20);
    for (const [, w] of this.workers) w.proc.kill("SIGKILL");
    await Promise.all([...this.workers.values()].map((w) => w.exited));
    this.workers.clear();
    await this.db.update(jobs).set({ owner: null, leaseUntil: null, workerPid: null }).where(eq(jobs.owner, this.me));
  }

  /** Serialises the database work of one job, so its messages are recorded in order. */
  private enqueue(jobId: string, work: () => Promise<void>): Promise<void> {
    const next = (this.queues.get(jobId) ?? Promise.resolve()).then(work).catch((err) => console.error(`job ${jobId}: ${err?.stack ?? err}`));
    this.queues.set(jobId, next);
    return next;
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopping) return;
    this.ticking = true;
    try {
      const now = nowMicros();
      const leaseUntil = now + this.services.settings.leaseMs * 1000;
      await this.db.update(jobs).set({ leaseUntil }).where(eq(jobs.owner, this.me));
      // Claim jobs that need driving and that nobody holds (or whose holder stopped renewing).
      await this.db.execute(sql`
        UPDATE jobs SET owner = ${this.me}, lease_until = ${leaseUntil}
        WHERE id IN (
          SELECT id FROM jobs
          WHERE (owner IS NULL OR lease_until < ${now})
            AND (state NOT IN ('Stopped', 'Finished', 'Failed') OR running_desired OR restart_requested)
          FOR UPDATE SKIP LOCKED
          LIMIT 20
        )`);
      const mine = await this.db.select({ id: jobs.id }).from(jobs).where(eq(jobs.owner, this.me));
      const ids = new Set(mine.map((j) => j.id));
      // A job taken from us (our lease ran out) or deleted: its worker must not go on.
      for (const [id, w] of this.workers) {
        if (!ids.has(id)) {
          w.proc.kill("SIGKILL");
          this.workers.delete(id);
        }
      }
      for (const { id } of mine) await this.enqueue(id, () => this.reconcile(id));
    } catch (err) {
      if (!this.stopping) console.error(`supervisor: ${(err as Error).message}`);
    } finally {
      this.ticking = false;
    }
  }

  private async setState(job: JobRow, state: JobState, reason: string, extra: Partial<JobRow> = {}): Promise<JobRow> {
    const now = nowMicros();
    const patch: Partial<JobRow> = { ...extra, updatedAt: now };
    if (state !== job.state) patch.state = state;
    const [row] = await this.db.update(jobs).set(patch).where(eq(jobs.id, job.id)).returning();
    if (!row) return job;
    if (state !== job.state || extra.failureMessage) {
      await this.db.insert(jobEvents).values({ jobId: job.id, fromState: job.state, toState: state, reason, at: now });
    }
    Object.assign(job, row);
    await this.services.events.publish(topics.pipelineJobs(row.pipelineId), { ...row, reason });
    return row;
  }

  /** Makes one job follow its desired state; reads the row afresh, as queued work may run after it changed. */
  private async reconcile(jobId: string): Promise<void> {
    const [job] = await this.db.select().from(jobs).where(eq(jobs.id, jobId));
    if (!job || job.owner !== this.me) return;
    const worker = this.workers.get(job.id);
    const desiredRun = job.runningDesired && job.stopMode === "none";
    const now = Date.now();

    if (!worker) {
      if (job.workerPid) await this.killOrphan(job);
      if (job.restartRequested && desiredRun) {
        await this.launch(job, "Restarting", job.ignoreState ? "restart requested, ignoring state" : "restart requested");
        return;
      }
      if (desiredRun) {
        const until = this.backoff.get(job.id);
        if (until !== undefined && now < until) return;
        this.backoff.delete(job.id);
        if (isTerminal(job.state) || job.state === "Created") {
          await this.launch(job, "Compiling", job.state === "Created" ? "job created" : `started (was ${job.state})`);
        } else {
          // A job that was running when its worker or control plane went away.
          await this.launch(job, "Recovering", job.state === "Recovering" ? "restarting after a failure" : `recovering from ${job.state}`);
        }
        return;
      }
      if (!isTerminal(job.state)) {
        await this.setState(job, "Stopped", `stopped (${job.stopMode}) while no worker ran`, { finishTime: nowMicros(), workerPid: null });
      }
      // Nothing to drive: let go of it.
      await this.db.update(jobs).set({ owner: null, leaseUntil: null }).where(and(eq(jobs.id, job.id), eq(jobs.owner, this.me)));
      return;
    }

    // A worker runs.
    if (!desiredRun) {
      const mode = job.stopMode === "graceful" ? "checkpoint" : job.stopMode;
      if (worker.stopSent === null || (mode === "force" && worker.stopSent !== "force") || (mode === "immediate" && worker.stopSent === "checkpoint")) {
        worker.afterStop = null;
        if (mode === "force") {
          worker.stopSent = "force";
          await this.setState(job, "Stopping", "stop requested (force): killing the worker");
          worker.proc.kill("SIGKILL");
        } else if (mode === "immediate") {
          worker.stopSent = "immediate";
          await this.setState(job, "Stopping", "stop requested (immediate)");
          this.send(worker, { type: "stop", mode: "immediate" });
        } else {
          worker.stopSent = "checkpoint";
          await this.setState(job, "CheckpointStopping", `stop requested (${job.stopMode}): taking a final checkpoint`);
          this.send(worker, { type: "stop", mode: "checkpoint" });
        }
      }
      return;
    }
    if (worker.stopSent === null && job.state === "Running") {
      if (job.parallelism !== worker.parallelism) {
        worker.stopSent = "checkpoint";
        worker.afterStop = "rescale";
        await this.setState(job, "Rescaling", `rescaling from ${worker.parallelism} to ${job.parallelism}: taking a checkpoint`);
        this.send(worker, { type: "stop", mode: "checkpoint" });
        return;
      }
      if (job.restartRequested) {
        worker.stopSent = "checkpoint";
        worker.afterStop = "restart";
        await this.setState(job, "Restarting", `restart requested${job.ignoreState ? " (ignoring state)" : ""}: taking a checkpoint`);
        this.send(worker, { type: "stop", mode: "checkpoint" });
        return;
      }
    }
    if (now - worker.lastHeartbeat > this.services.settings.heartbeatTimeoutMs && worker.outcome === null) {
      console.error(`job ${job.id}: no heartbeat for ${now - worker.lastHeartbeat} ms; killing worker ${worker.proc.pid}`);
      worker.stderrTail.push(`no heartbeat for ${Math.round((now - worker.lastHeartbeat) / 1000)} s`);
      worker.proc.kill("SIGKILL");
      return;
    }
    if (job.state === "Running" && worker.stopSent === null) {
      const [p] = await this.db.select({ interval: pipelines.checkpointIntervalMicros }).from(pipelines).where(eq(pipelines.id, job.pipelineId));
      const intervalMs = (p?.interval ?? 10_000_000) / 1000;
      if (now - worker.lastCheckpointAsked >= intervalMs) {
        worker.lastCheckpointAsked = now;
        this.send(worker, { type: "checkpoint" });
      }
    }
  }

  private send(worker: RunningWorker, message: ControlMessage): void {
    try {
      worker.proc.send(message);
    } catch {
      // The worker is gone; its exit is handled separately.
    }
  }

  /** A worker recorded for this job may still run (its control plane died): make sure it doesn't write alongside a new one. */
  private async killOrphan(job: JobRow): Promise<void> {
    const pid = job.workerPid!;
    try {
      process.kill(pid, 0);
      process.kill(pid, "SIGKILL");
      for (let i = 0; i < 50; i++) {
        await Bun.sleep(20);
        process.kill(pid, 0);
      }
    } catch {
      // Not running (any more).
    }
    await this.db.update(jobs).set({ workerPid: null }).where(eq(jobs.id, job.id));
  }

  private async launch(job: JobRow, state: JobState, reason: string): Promise<void> {
    job = await this.setState(job, state, reason);
    const [pipeline] = await this.db.select().from(pipelines).where(eq(pipelines.id, job.pipelineId));
    if (!pipeline) return;
    const udfRows = pipeline.udfs.length ? await this.db.select().from(udfsTable) : [];
    const config: WorkerConfig = {
      jobId: job.id,
      runId: job.runId + 1,
      query: pipeline.query,
      parallelism: job.parallelism,
      stateDir: childLocation(this.services.settings.checkpointDir, job.id),
      udfs: udfRows.filter((u) => pipeline.udfs.includes(u.name)).map((u) => ({ name: u.name, definition: u.definition })),
      profiles: await loadProfiles(this.services),
      ignoreState: job.ignoreState,
      heartbeatMs: this.services.settings.heartbeatMs,
    };
    // From scratch, checkpoints are numbered from 1 again: the old ones' records go.
    if (config.ignoreState) await this.db.delete(checkpoints).where(eq(checkpoints.jobId, job.id));
    if (state === "Compiling") job = await this.setState(job, "Scheduling", "starting a worker");
    const worker: RunningWorker = {
      proc: null as any,
      parallelism: job.parallelism,
      startedAt: Date.now(),
      lastHeartbeat: Date.now(),
      lastCheckpointAsked: Date.now(),
      stopSent: null,
      afterStop: null,
      outcome: null,
      stderrTail: [],
      exited: Promise.resolve(0),
    };
    const jobId = job.id;
    // The job id on the command line lets operators (and tests) find a job's worker with ps.
    const proc = Bun.spawn(["bun", WORKER, jobId], {
      env: { ...process.env, RUNNEL_WORKER_CONFIG: JSON.stringify(config) },
      stdin: "ignore",
      stdout: "inherit",
      stderr: "pipe",
      ipc: (message: WorkerMessage) => {
        worker.lastHeartbeat = Date.now();
        void this.enqueue(jobId, () => this.onMessage(jobId, worker, message));
      },
      serialization: "json",
    });
    worker.proc = proc as any;
    worker.exited = proc.exited;
    this.workers.set(jobId, worker);
    void this.readStderr(jobId, worker);
    await this.db
      .update(jobs)
      .set({
        workerPid: proc.pid,
        runId: config.runId,
        runningParallelism: job.parallelism,
        restartRequested: false,
        ignoreState: false,
        // Starting from scratch numbers checkpoints from 1 again.
        ...(config.ignoreState ? { outputPublished: {} } : {}),
      })
      .where(eq(jobs.id, jobId));
    proc.exited.then((code) => this.enqueue(jobId, () => this.onExit(jobId, worker, code, proc.signalCode ? String(proc.signalCode) : null)));
  }

  private async readStderr(jobId: string, worker: RunningWorker): Promise<void> {
    const decoder = new TextDecoder();
    let pending = "";
    const reader = (worker.proc.stderr as ReadableStream<Uint8Array>).getReader();
    while (true) {
      const { value: chunk, done } = await reader.read();
      if (done) break;
      pending += decoder.decode(chunk, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        if (!line.trim()) continue;
        worker.stderrTail.push(line);
        if (worker.stderrTail.length > 20) worker.stderrTail.shift();
        if (process.env.RUNNEL_WORKER_LOGS !== "0") console.error(`[${jobId}] ${line}`);
      }
    }
  }

  private async onMessage(jobId: string, worker: RunningWorker, m: WorkerMessage): Promise<void> {
    if (this.workers.get(jobId) !== worker) return;
    const [job] = await this.db.select().from(jobs).where(eq(jobs.id, jobId));
    if (!job) return;
    switch (m.type) {
      case "planned":
        await this.db.update(jobs).set({ tasks: m.tasks }).where(eq(jobs.id, jobId));
        break;
      case "running": {
        const restored = m.restoredCheckpoint === null ? "from the start" : `from checkpoint ${m.restoredCheckpoint}`;
        await this.setState(job, "Running", `running with parallelism ${worker.parallelism}, ${restored}`, {
          startTime: job.startTime ?? nowMicros(),
          finishTime: null,
          failureMessage: null,
        });
        break;
      }
      case "heartbeat": {
        const at = nowMicros();
        this.metrics.set(jobId, { at, operators: m.metrics });
        await this.services.events.publish(topics.jobMetrics(jobId), { at, operators: m.metrics });
        const last = this.lastMetricsWrite.get(jobId) ?? 0;
        if (Date.now() - last > 2000) {
          this.lastMetricsWrite.set(jobId, Date.now());
          await this.db
            .insert(jobMetrics)
            .values({ jobId, at, metrics: m.metrics })
            .onConflictDoUpdate({ target: jobMetrics.jobId, set: { at, metrics: m.metrics } });
          await this.db.update(jobs).set({ lastHeartbeat: at }).where(eq(jobs.id, jobId));
        }
        break;
      }
      case "checkpoint": {
        const [row] = await this.db
          .insert(checkpoints)
          .values({
            jobId,
            checkpointId: m.checkpointId,
            runId: job.runId,
            at: m.at * 1000,
            durationMicros: Math.round(m.durationMs * 1000),
            alignmentMicros: Math.round(m.alignmentMs * 1000),
            sizeBytes: m.bytes,
            then: m.then,
          })
          .onConflictDoNothing()
          .returning();
        if (row) await this.services.events.publish(topics.jobCheckpoints(jobId), row);
        // Progress after a restore: the job is healthy again, so the restart budget is full again.
        if (job.restarts > 0) await this.db.update(jobs).set({ restarts: 0 }).where(eq(jobs.id, jobId));
        break;
      }
      case "output": {
        // A restore re-commits the checkpoint it restores; whoever drove the job before may have published it already.
        const published = job.outputPublished[String(m.writer)] ?? 0;
        if (m.checkpointId <= published) break;
        await this.db
          .update(jobs)
          .set({ outputPublished: { ...job.outputPublished, [String(m.writer)]: m.checkpointId } })
          .where(eq(jobs.id, jobId));
        await this.services.events.publish(topics.pipelineOutput(job.pipelineId), { jobId, checkpointId: m.checkpointId, lines: m.lines });
        break;
      }
      case "finished":
        worker.outcome = "finished";
        break;
      case "stopped":
        worker.outcome = "stopped";
        break;
      case "failed":
        worker.outcome = { failed: m.message, userError: m.userError };
        break;
    }
  }

  /** Keeps the newest lines for new subscribers; also fed by other control planes' events. */
  appendOutput(pipelineId: string, lines: string[]): void {
    let buf = this.output.get(pipelineId);
    if (!buf) this.output.set(pipelineId, (buf = []));
    buf.push(...lines);
    if (buf.length > OUTPUT_BUFFER) buf.splice(0, buf.length - OUTPUT_BUFFER);
  }

  private async onExit(jobId: string, worker: RunningWorker, code: number, signal: string | null): Promise<void> {
    if (this.workers.get(jobId) !== worker) return;
    this.workers.delete(jobId);
    if (this.stopping) return;
    const [job] = await this.db.select().from(jobs).where(eq(jobs.id, jobId));
    if (!job) return;
    const clear = { workerPid: null, runningParallelism: null } as Partial<JobRow>;
    const outcome = worker.outcome;
    if (outcome === "finished") {
      await this.setState(job, "Finishing", "all input read; final checkpoint committed", clear);
      await this.setState(job, "Finished", "finished", { finishTime: nowMicros(), runningDesired: false });
      return;
    }
    if (outcome === "stopped" || (worker.stopSent !== null && worker.stopSent !== "checkpoint")) {
      if (worker.afterStop === "rescale" || worker.afterStop === "restart") {
        await this.db.update(jobs).set(clear).where(eq(jobs.id, jobId));
        const [fresh] = await this.db.select().from(jobs).where(eq(jobs.id, jobId));
        if (fresh && fresh.runningDesired && fresh.stopMode === "none") {
          await this.launch(
            fresh,
            worker.afterStop === "rescale" ? "Rescaling" : "Restarting",
            worker.afterStop === "rescale" ? `starting at parallelism ${fresh.parallelism} from the checkpoint` : fresh.ignoreState ? "starting again from scratch" : "starting again from the checkpoint",
          );
          return;
        }
      }
      await this.setState(job, "Stopped", outcome === "stopped" ? "stopped after a final checkpoint" : `stopped (${worker.stopSent})`, {
        ...clear,
        finishTime: nowMicros(),
      });
      return;
    }
    const detail = typeof outcome === "object" && outcome !== null ? outcome.failed : `worker exited (${signal ?? `code ${code}`})${worker.stderrTail.length ? `: ${worker.stderrTail.slice(-3).join(" | ")}` : ""}`;
    if (typeof outcome === "object" && outcome?.userError) {
      await this.setState(job, "Failing", detail, { ...clear, failureMessage: detail });
      await this.setState(job, "Failed", "the pipeline cannot run as written; fix it and start it again", { finishTime: nowMicros(), runningDesired: false, failureMessage: detail });
      return;
    }
    const restarts = job.restarts + 1;
    if (restarts > this.services.settings.maxRestarts) {
      await this.setState(job, "Failing", detail, { ...clear, failureMessage: detail, restarts });
      await this.setState(job, "Failed", `gave up after ${restarts - 1} restarts; start it again once the cause is fixed`, {
        finishTime: nowMicros(),
        runningDesired: false,
        failureMessage: detail,
      });
      return;
    }
    const delay = Math.min(10_000, 250 * 2 ** (restarts - 1));
    this.backoff.set(jobId, Date.now() + delay);
    await this.setState(job, "Recovering", `${detail}; restoring from the last checkpoint in ${delay} ms (restart ${restarts} of ${this.services.settings.maxRestarts})`, {
      ...clear,
      failureMessage: detail,
      restarts,
    });
  }

  /** The pid of the worker running a job here, if any (tests kill it). */
  workerPid(jobId: string): number | undefined {
    return this.workers.get(jobId)?.proc.pid;
  }
}
