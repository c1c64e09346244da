/**
 * Runs one stateful pipeline in this process (used by bench/state.ts) and prints
 * a JSON summary: wall and CPU time, events, peak RSS, and per checkpoint its
 * duration, alignment, bytes written and the longest pause between two batches
 * at any operator while it ran.
 *
 *   bun bench/state-run.ts <sql file> <state dir> '<job options as JSON>'
 */
import { readFileSync } from "node:fs";
import { Job, type JobOptions } from "../core/dataflow/job.ts";
import { createRegistry } from "../core/registry/loader.ts";
import { planSql } from "../core/sql/index.ts";

const [file, stateDir, optionsJson] = process.argv.slice(2) as [string, string, string];
/**
 * pausesFromMs: gaps before this long after the job started running are reported apart, as
 * `startupPauseMs` (the state growing to its size and the collector's first full collections of it), rather
 * than in the first checkpoint's: with it set to the checkpoint interval, each checkpoint's pause covers only
 * the time from its trigger on.
 */
const options = JSON.parse(optionsJson ?? "{}") as Partial<JobOptions> & { stopAfterMs?: number; stopAfterEvents?: number; pausesFromMs?: number };
const registry = await createRegistry();
const pipeline = planSql(readFileSync(file, "utf8"), registry);
let peak = process.memoryUsage().rss;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
const cpu0 = process.cpuUsage();
/** The machine's CPU time so far, and the part the hypervisor gave to other guests (steal), in clock ticks. */
const machineTicks = () => {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    return { total: f.reduce((a, b) => a + b, 0), steal: f[7]! };
  } catch {
    return null;
  }
};
const ticks0 = machineTicks();
const started = performance.now();
const job = new Job(pipeline, registry, { parallelism: 1, checkpointIntervalMs: 0, ...options, stateDir });

// Per checkpoint: the longest gap between batches at any operator since the previous one.
const checkpoints: { id: number; durationMs: number; alignmentMs: number; bytes: number; longestPauseMs: number; atSeconds: number }[] = [];
let seen = 0;
/** The longest gap between batches at any operator over the whole run (with or without checkpoints), start-up apart when split. */
let longestPauseMs = 0;
let startupPauseMs: number | null = null;
let runningSince: number | null = null;
const gaps = () => {
  for (const m of job.metrics.operators) longestPauseMs = Math.max(longestPauseMs, m.longestGapMs);
};
const record = () => {
  if (options.pausesFromMs && startupPauseMs === null && runningSince !== null && performance.now() - runningSince >= options.pausesFromMs) {
    gaps();
    startupPauseMs = longestPauseMs;
    longestPauseMs = 0;
    for (const m of job.metrics.operators) m.longestGapMs = 0;
  }
  gaps();
  const cp = job.metrics.lastCheckpoint;
  if (!cp || job.metrics.checkpointsCompleted === seen) return;
  seen = job.metrics.checkpointsCompleted;
  let pause = 0;
  for (const m of job.metrics.operators) {
    pause = Math.max(pause, m.longestGapMs);
    m.longestGapMs = 0;
  }
  checkpoints.push({ id: cp.id, durationMs: cp.durationMs, alignmentMs: cp.alignmentMs, bytes: cp.bytes ?? 0, longestPauseMs: pause, atSeconds: (performance.now() - started) / 1000 });
};
const watch = setInterval(record, 20);

let restoredAfterMs: number | null = null;
void job.started.then(() => {
  runningSince = performance.now();
  restoredAfterMs = runningSince - started;
});
if (options.stopAfterMs) setTimeout(() => job.stop(), options.stopAfterMs);
// Stops (with a checkpoint that keeps every operator's state, unlike the end of input) once the sources read this many.
const sourceEvents = () => job.metrics.operators.filter((m) => m.operatorId.endsWith("-source")).reduce((n, m) => n + m.recordsOut, 0);
if (options.stopAfterEvents) {
  const limit = options.stopAfterEvents;
  const poll = setInterval(() => {
    if (sourceEvents() < limit) return;
    clearInterval(poll);
    void job.stop();
  }, 20);
}
await job.run();
clearInterval(watch);
record();
gaps();
const cpu = process.cpuUsage(cpu0);
const ticks1 = machineTicks();
// Steal: on a shared VM, the share of the machine's time another guest ran; runs with more of it run slower.
const stealPercent = ticks0 && ticks1 && ticks1.total > ticks0.total ? (100 * (ticks1.steal - ticks0.steal)) / (ticks1.total - ticks0.total) : null;
// The processing thread's own CPU (Linux: its task's utime + stime, in clock ticks of 10 ms), apart from the
// collector's and compiler's threads: what a checkpoint takes from processing shows here.
const mainThreadCpuSeconds = (() => {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
})();
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage().rss);
const source = sourceEvents();
let stateEntries = 0;
for (const m of job.metrics.operators) stateEntries += m.stateEntries;
console.log(
  JSON.stringify({
    wallSeconds: (performance.now() - started) / 1000,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    mainThreadCpuSeconds,
    events: source,
    peakRssMb: peak / 1024 / 1024,
    restoredAfterMs,
    restoredCheckpoint: job.restoredCheckpoint,
    stateEntries,
    longestPauseMs,
    startupPauseMs,
    stealPercent,
    checkpoints,
  }),
);
process.exit(0);
