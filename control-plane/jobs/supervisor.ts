/**
 * Drives jobs: each control plane claims jobs through a lease in the database
 * (so with several control planes on one PostgreSQL exactly one drives each
 * job), starts one worker process per running job, paces its checkpoints,
 * watches its heartbeats, and moves the job through its states: restoring
 * from the last checkpoint with backoff when a worker dies, stopping with a
 * checkpoint and starting again to rescale or restart.
 *
 * At most RUNNEL_MAX_WORKERS workers run here at once; further jobs wait in
 * Scheduling (oldest first) without being claimed, so another control plane
 * with room may take them. A worker gets only what its pipeline needs (see
 * worker-env.ts), and is signalled only while its pid is still that worker.
 */
import { and, asc, eq, inArray, sql } from "drizzle-orm";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { childLocation } from "../../core/checkpoint/store.ts";
import type { Subprocess } from "bun";
import { checkpoints, connectionProfiles, jobEvents, jobMetrics, jobs, pipelines, udfs as udfsTable } from "../db/schema.ts";
import { isSameProcess, processIdentity } from "../process-identity.ts";
import { maskQuery, redactText } from "../security/redact.ts";
import { SecretKeyError } from "../security/secret-box.ts";
import type { Services } from "../services/context.ts";
import { topics } from "../services/events.ts";
import { nowMicros } from "../services/ids.ts";
import { loadProfiles, profileNamesOf, type JobRow } from "../services/pipelines.ts";
import type { ControlMessage, OperatorMetricsMessage, WorkerConfig, WorkerMessage } from "./protocol.ts";
import { isTerminal, type JobState } from "./states.ts";
import { referencedEnv, workerEnvironment } from "./worker-env.ts";

const WORKER = resolve(import.meta.dir, "worker.ts");
const OUTPUT_BUFFER = 1000;
const TICK_MS = 250;
/** A silent worker that visibly computes gets this many timeouts before it is taken for hung. */
const BUSY_GRACE = 3;
const WAITING_FOR_SLOT = "waiting for a worker slot";

/** The command line marker of a job's worker (the job id after the script), checked before signalling a recorded pid. */
const workerMarker = (jobId: string) => `jobs/worker.ts ${jobId}`;

type AfterStop = "rescale" | "restart" | null;

/** CPU time (clock ticks) and scheduler state of a process, from /proc; null when it is gone. */
function cpuOf(pid: number): { ticks: number; state: string } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: f[0]!, ticks: Number(f[11]) + Number(f[12]) };
  } catch {
    return null;
  }
}

interface RunningWorker {
  proc: Subprocess<"pipe", "inherit", "pipe">;
  parallelism: number;
  startedAt: number;
  lastHeartbeat: number;
  /** CPU time seen at the last heartbeat check, to tell a busy worker from a hung one. */
  lastCpu: number;
  /** Values to blot out of what the worker says (its secrets), longest first. */
  secrets: string[];
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
  private lagTimer: ReturnType<typeof setInterval> | null = null;
  /** Until when (this machine's clock, ms) the leases this control plane renewed last are surely its own. */
  private leaseHeldUntil = 0;
  private leaseTimer: ReturnType<typeof setInterval> | null = null;

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
    this.timer = setInterval(() => void this.tick(), TICK_MS);
    // When this process itself is held up (a long GC, a starved machine), heartbeats that arrived
    // meanwhile are still queued: the time it was not looking is not the workers' silence.
    let last = Date.now();
    this.lagTimer = setInterval(() => {
      const stalled = Date.now() - last - TICK_MS;
      last = Date.now();
      if (stalled > 1000) for (const w of this.workers.values()) w.lastHeartbeat += stalled;
      this.checkLease();
    }, TICK_MS);
    // Leases are renewed apart from the reconciling tick, which a busy database or machine can make slow.
    let renewing = false;
    this.leaseTimer = setInterval(() => {
      if (renewing || this.stopping) return;
      renewing = true;
      this.renewLeases()
        .catch(() => {}) // Unreachable: checkLease acts once the lease runs short.
        .finally(() => (renewing = false));
    }, Math.max(50, Math.floor(this.services.settings.leaseMs / 5)));
  }

  /** Shuts this control plane down: workers stop at once and leases are released; jobs resume from checkpoints elsewhere or at the next start. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    if (this.lagTimer) clearInterval(this.lagTimer);
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    // A tick stuck on an unreachable database must not hold the shutdown up for ever.
    for (let waited = 0; this.ticking && waited < 5000; waited += 20) await Bun.sleep(20);
    for (const [, w] of this.workers) w.proc.kill("SIGKILL");
    await Promise.all([...this.workers.values()].map((w) => w.exited));
    this.workers.clear();
    await this.db.update(jobs).set({ owner: null, leaseUntil: null, workerPid: null, workerIdentity: null }).where(eq(jobs.owner, this.me));
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
      await this.renewLeases();
      // Claim jobs that need driving and that nobody holds (or whose holder stopped renewing);
      // with no free worker slot, only those that need no new worker (stops, orphans) and those
      // not yet shown as waiting for one (launch marks them Scheduling, with the reason, and lets go).
      const full = this.workers.size >= this.services.settings.maxWorkers;
      await this.db.execute(sql`
        UPDATE jobs SET owner = ${this.me}, lease_until = ${leaseUntil}
        WHERE id IN (
          SELECT id FROM jobs
          WHERE (owner IS NULL OR lease_until < ${now})
            AND (state NOT IN ('Stopped', 'Finished', 'Failed') OR running_desired OR restart_requested)
            ${full ? sql`AND NOT (running_desired AND stop_mode = 'none' AND worker_pid IS NULL AND state = 'Scheduling')` : sql``}
          ORDER BY created_at
          FOR UPDATE SKIP LOCKED
          LIMIT 20
        )`);
      const mine = await this.db.select({ id: jobs.id }).from(jobs).where(eq(jobs.owner, this.me)).orderBy(asc(jobs.createdAt));
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

  /** Extends this control plane's leases; also on its own timer, so slow reconciling never lets them lapse. */
  private async renewLeases(): Promise<void> {
    const asked = Date.now();
    const leaseUntil = nowMicros() + this.services.settings.leaseMs * 1000;
    await this.db.update(jobs).set({ leaseUntil }).where(eq(jobs.owner, this.me));
    this.leaseHeldUntil = Math.max(this.leaseHeldUntil, asked + this.services.settings.leaseMs);
  }

  /**
   * A control plane that cannot renew its leases (its database is unreachable, or it was paused) stops
   * its workers before the leases run out: another control plane may then take the jobs and start
   * workers of its own, and two runs of a job must not write at once (the checkpoint store's fence
   * stops whatever slips through). The jobs restore from their last checkpoint wherever they are claimed next.
   */
  private checkLease(): void {
    // An embedded PGlite database is this process's alone: no other control plane can take its jobs.
    if (this.workers.size === 0 || this.stopping || this.services.database.kind === "pglite") return;
    const { leaseMs } = this.services.settings;
    // Stop a little before the lease ends, so the workers are gone when another control plane may claim.
    const margin = Math.min(1000, leaseMs / 4);
    const left = this.leaseHeldUntil - Date.now();
    if (left > margin) return;
    console.error(
      `supervisor: the database has not confirmed this control plane's leases for ${Math.round((leaseMs - left) / 100) / 10} s (RUNNEL_LEASE_MS=${leaseMs}): ` +
        `stopping its ${this.workers.size} job worker(s) so no other control plane's run of the same jobs overlaps them; ` +
        `they restore from their last checkpoints once a control plane reaches the database. Check DATABASE_URL and the network to it.`,
    );
    for (const [id, w] of this.workers) {
      w.proc.kill("SIGKILL");
      this.workers.delete(id);
    }
  }

  private async setState(job: JobRow, state: JobState, reason: string, extra: Partial<JobRow> = {}): Promise<JobRow> {
    const now = nowMicros();
    const patch: Partial<JobRow> = { ...extra, updatedAt: now };
    if (state !== job.state) patch.state = state;
    // The state and its event land together: whoever sees the state also finds the event.
    const row = await this.db.transaction(async (tx) => {
      const [updated] = await tx.update(jobs).set(patch).where(eq(jobs.id, job.id)).returning();
      if (updated && (state !== job.state || extra.failureMessage)) {
        await tx.insert(jobEvents).values({ jobId: job.id, fromState: job.state, toState: state, reason, at: now });
      }
      return updated;
    });
    if (!row) return job;
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
        if (isTerminal(job.state) || job.state === "Created" || (job.state === "Scheduling" && job.runId === 0)) {
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
    const silent = now - worker.lastHeartbeat;
    const timeout = this.services.settings.heartbeatTimeoutMs;
    if (silent > timeout && worker.outcome === null) {
      // On a busy machine a healthy worker may be late: while it visibly computes, it gets more time.
      const cpu = cpuOf(worker.proc.pid);
      const busy = cpu !== null && cpu.ticks > worker.lastCpu && cpu.state !== "T" && cpu.state !== "t" && cpu.state !== "Z";
      if (cpu) worker.lastCpu = cpu.ticks;
      if (!busy || silent > timeout * BUSY_GRACE) {
        console.error(`job ${job.id}: no heartbeat for ${silent} ms${busy ? " although it computes" : ""}; killing worker ${worker.proc.pid}`);
        worker.stderrTail.push(`no heartbeat for ${Math.round(silent / 1000)} s`);
        worker.proc.kill("SIGKILL");
        return;
      }
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

  /**
   * A worker recorded for this job may still run (its control plane died): make sure it doesn't write
   * alongside a new one. The pid is signalled only while it is still that worker (same start time, same
   * command line): after a reboot or on another machine, the pid may belong to anything.
   */
  private async killOrphan(job: JobRow): Promise<void> {
    const pid = job.workerPid!;
    if (isSameProcess(pid, job.workerIdentity, workerMarker(job.id))) {
      try {
        process.kill(pid, "SIGKILL");
        for (let i = 0; i < 50 && processIdentity(pid) === job.workerIdentity; i++) await Bun.sleep(20);
      } catch {
        // Gone meanwhile.
      }
    }
    await this.db.update(jobs).set({ workerPid: null, workerIdentity: null }).where(eq(jobs.id, job.id));
  }

  private async launch(job: JobRow, state: JobState, reason: string): Promise<void> {
    const { settings } = this.services;
    if (this.workers.size >= settings.maxWorkers) {
      // Admission: the job waits, unclaimed, for a slot here or on another control plane.
      if (job.state !== "Scheduling") {
        await this.setState(job, "Scheduling", `${WAITING_FOR_SLOT}: ${this.workers.size} jobs run on this control plane (RUNNEL_MAX_WORKERS=${settings.maxWorkers})`);
      }
      await this.db.update(jobs).set({ owner: null, leaseUntil: null }).where(and(eq(jobs.id, job.id), eq(jobs.owner, this.me)));
      return;
    }
    job = await this.setState(job, state, reason);
    const [pipeline] = await this.db.select().from(pipelines).where(eq(pipelines.id, job.pipelineId));
    if (!pipeline) return;
    const udfRows = pipeline.udfs.length ? await this.db.select().from(udfsTable) : [];
    // Only the profiles its tables use, and only the allowlisted variables its SQL names.
    const used = profileNamesOf(pipeline.query);
    let profiles: WorkerConfig["profiles"];
    try {
      profiles = await loadProfiles(this.services, (name) => used.includes(name));
    } catch (err) {
      if (!(err instanceof SecretKeyError)) throw err;
      // Retrying cannot help until the operator supplies the key.
      await this.setState(job, "Failing", err.message, { failureMessage: err.message });
      await this.setState(job, "Failed", "a connection profile it uses cannot be opened", { finishTime: nowMicros(), runningDesired: false, failureMessage: err.message });
      return;
    }
    const env = referencedEnv(settings, [pipeline.query, ...Object.values(profiles).flatMap((p) => Object.values(p.options))]);
    const config: WorkerConfig = {
      jobId: job.id,
      runId: job.runId + 1,
      query: pipeline.query,
      parallelism: job.parallelism,
      stateDir: childLocation(settings.checkpointDir, job.id),
      udfs: udfRows.filter((u) => pipeline.udfs.includes(u.name)).map((u) => ({ name: u.name, definition: u.definition })),
      profiles,
      env,
      envAllowlist: settings.envAllowlist,
      fileRoots: settings.fileRoots,
      ignoreState: job.ignoreState,
      heartbeatMs: settings.heartbeatMs,
      workers: Math.max(1, Math.min(job.parallelism, settings.jobWorkers)),
      scheduler: settings.scheduler,
    };
    const secrets = [
      ...maskQuery(pipeline.query, this.services.registry).values,
      ...Object.values(env),
      ...(await this.profileSecretValues(used)),
    ];
    // From scratch, checkpoints are numbered from 1 again: the old ones' records go.
    if (config.ignoreState) await this.db.delete(checkpoints).where(eq(checkpoints.jobId, job.id));
    if (state === "Compiling") job = await this.setState(job, "Scheduling", "starting a worker");
    const worker: RunningWorker = {
      proc: null as any,
      parallelism: job.parallelism,
      startedAt: Date.now(),
      lastHeartbeat: Date.now(),
      lastCpu: 0,
      secrets,
      lastCheckpointAsked: Date.now(),
      stopSent: null,
      afterStop: null,
      outcome: null,
      stderrTail: [],
      exited: Promise.resolve(0),
    };
    const jobId = job.id;
    // The job id on the command line lets operators (and tests) find a job's worker with ps.
    const proc = Bun.spawn([...settings.workerWrapper, process.execPath, WORKER, jobId], {
      env: workerEnvironment(settings),
      stdin: "pipe",
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
    proc.stdin.write(JSON.stringify(config));
    void proc.stdin.end();
    await this.db
      .update(jobs)
      .set({
        workerPid: proc.pid,
        workerIdentity: processIdentity(proc.pid),
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
        const shown = redactText(line, worker.secrets);
        worker.stderrTail.push(shown);
        if (worker.stderrTail.length > 20) worker.stderrTail.shift();
        if (process.env.RUNNEL_WORKER_LOGS !== "0") console.error(`[${jobId}] ${shown}`);
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
        const processes = new Set(m.placement.map((p) => p.worker)).size;
        await this.setState(job, "Running", `running with parallelism ${worker.parallelism}${processes > 1 ? ` in ${processes} worker processes` : ""}, ${restored}`, {
          startTime: job.startTime ?? nowMicros(),
          finishTime: null,
          failureMessage: null,
          placement: m.placement,
        });
        break;
      }
      case "placement": {
        // Subscribers (the console's job page) learn that the subtasks moved.
        const [row] = await this.db.update(jobs).set({ placement: m.placement }).where(eq(jobs.id, jobId)).returning();
        if (row) await this.services.events.publish(topics.pipelineJobs(row.pipelineId), { ...row, reason: "subtasks placed on new worker processes" });
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
        worker.outcome = { failed: redactText(m.message, worker.secrets), userError: m.userError };
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
    const clear = { workerPid: null, workerIdentity: null, runningParallelism: null, placement: null } as Partial<JobRow>;
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

  /** The secret values of the named profiles (not their plain settings), to blot out of what their worker says. */
  private async profileSecretValues(names: string[]): Promise<string[]> {
    if (names.length === 0) return [];
    const rows = await this.db.select().from(connectionProfiles).where(inArray(connectionProfiles.name, names));
    const values = await Promise.all(rows.map((r) => this.services.secrets.unseal(r.secrets, `profile:${r.id}`)));
    return values.flatMap((v) => Object.values(v));
  }

  /** The pid of the worker running a job here, if any (tests kill it). */
  workerPid(jobId: string): number | undefined {
    return this.workers.get(jobId)?.proc.pid;
  }
}
