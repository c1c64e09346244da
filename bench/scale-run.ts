/**
 * Runs one pipeline at a given parallelism, in this process (workers = 1) or
 * across worker processes (the job manager here, workers started by the
 * process scheduler as `runnel run --workers N` does), and prints as JSON:
 * the wall seconds and CPU seconds from the moment every worker is running
 * (start-up excluded) to the end, the CPU seconds per worker, and the records
 * the sources read. Used by bench/scale.ts.
 *
 *   bun bench/scale-run.ts pipeline.sql PARALLELISM WORKERS [STOP_AFTER_RECORDS]
 *
 * With STOP_AFTER_RECORDS (unbounded sources such as Kafka) the job is stopped
 * once its sources have read that many records; the end is then the moment that
 * was seen (worker metrics arrive every 250 ms, so up to that much late).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JobManager } from "../core/cluster/manager.ts";
import { Job } from "../core/dataflow/job.ts";
import { createRegistry } from "../core/registry/loader.ts";
import { planSql } from "../core/sql/index.ts";

const [file, p, w, stopAfter] = process.argv.slice(2);
const parallelism = Number(p);
const workers = Number(w);
const sql = readFileSync(file!, "utf8");
const registry = await createRegistry();
const pipeline = planSql(sql, registry);
const stateDir = mkdtempSync(join(tmpdir(), "runnel-bench-scale-state-"));
const log = { info() {}, warn: (m: string) => console.error(m) };
// RUNNEL_BENCH_COMBINE=0: without the window combiner (core/operators/window-combine.ts), to compare in one run.
const options = { parallelism, stateDir, checkpointIntervalMs: 10_000, log, combine: process.env.RUNNEL_BENCH_COMBINE !== "0" };

/** CPU seconds (user + system) of a process, and of its children it has reaped, from /proc. */
function cpuOf(pid: number | "self"): { own: number; children: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number);
  // Fields 14-17 of stat (utime, stime, cutime, cstime) are at 11-14 after the command name; clock ticks of 10 ms.
  return { own: (f[11]! + f[12]!) / 100, children: (f[13]! + f[14]!) / 100 };
}

const job =
  workers > 1
    ? new JobManager(pipeline, registry, options, {
        sql,
        workers,
        scheduler: registry.scheduler("process")!,
        // RUNNEL_BENCH_PROFILE=dir: each worker writes a CPU profile there (bun --cpu-prof).
        workerCommand: [
          process.execPath,
          ...(process.env.RUNNEL_BENCH_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.RUNNEL_BENCH_PROFILE}`] : []),
          join(import.meta.dir, "..", "core", "cluster", "worker-main.ts"),
        ],
      })
    : new Job(pipeline, registry, options);

// Events a generator left out (a pushed-down `bid IS NOT NULL`) count as read: they were numbered all the same.
const sourceRecords = () =>
  job.metrics.operators.filter((m) => m.operatorId.endsWith("-source")).reduce((n, m) => n + m.recordsOut + (m.connector.events_left_out ?? 0), 0);
const running = job.run();
await job.started;
const t0 = performance.now();
const self0 = cpuOf("self");
const pids = job instanceof JobManager ? [...new Set(job.placement.map((x) => x.pid))] : [];
const workers0 = new Map(pids.map((pid) => [pid, cpuOf(pid).own]));
let end = 0;
let perWorker: number[] = [];
if (stopAfter) {
  await new Promise<void>((resolve) => {
    const watcher = setInterval(() => {
      if (sourceRecords() < Number(stopAfter)) return;
      clearInterval(watcher);
      end = performance.now();
      // What the workers used up to here (they still take the final checkpoint after).
      perWorker = pids.map((pid) => cpuOf(pid).own - workers0.get(pid)!);
      job.stop();
      resolve();
    }, 20);
  });
}
// Just before the workers exit, their CPU: sampled while they finish (good to 10 ms).
if (!end) perWorker = pids.map(() => 0);
const sampler = setInterval(() => {
  if (stopAfter) return;
  perWorker = pids.map((pid, i) => {
    try {
      return cpuOf(pid).own - workers0.get(pid)!;
    } catch {
      return perWorker[i]!; // it has exited: its last sample stands
    }
  });
}, 20);
await running;
clearInterval(sampler);
if (!end) end = performance.now();
const self1 = cpuOf("self");
// Reaped workers' CPU counts in our children's time; their start-up is taken off.
const workerCpu = self1.children - self0.children - [...workers0.values()].reduce((a, b) => a + b, 0);
rmSync(stateDir, { recursive: true, force: true });
console.log(
  JSON.stringify({
    wallSeconds: (end - t0) / 1000,
    // The same span on the machine's clock (ms since the epoch), to line up runs made at once.
    runningFromMs: performance.timeOrigin + t0,
    runningUntilMs: performance.timeOrigin + end,
    managerCpuSeconds: self1.own - self0.own,
    workerCpuSeconds: pids.length ? workerCpu : 0,
    perWorkerCpuSeconds: perWorker,
    sourceRecords: sourceRecords(),
  }),
);
process.exit(0);
