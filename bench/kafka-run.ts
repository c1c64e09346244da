/**
 * Runs one Kafka pipeline in this process until its source has read `records`
 * records, stops it with a final checkpoint (so sinks flush and commit), and
 * prints CPU seconds, wall seconds and peak RSS as JSON (used by bench/kafka.ts).
 *   bun bench/kafka-run.ts pipeline.sql records [--profile]
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Job } from "../core/dataflow/job.ts";
import { createRegistry } from "../core/registry/loader.ts";
import { planSql } from "../core/sql/index.ts";

const file = process.argv[2]!;
const records = Number(process.argv[3]);
const registry = await createRegistry();
const pipeline = planSql(readFileSync(file, "utf8"), registry);
const stateDir = mkdtempSync(join(tmpdir(), "runnel-bench-state-"));
// process.memoryUsage.rss() only: process.memoryUsage() also gathers heap statistics, and the profile of the EOS
// run put ~2.5% of the CPU counted as the pipeline's in it (14 µs a call in isolation, so probably a GC it waits
// for). resourceUsage().maxRSS is no use here: a spawned process starts with its parent's high-water mark.
let peak = process.memoryUsage.rss();
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 50);
const job = new Job(pipeline, registry, { parallelism: 1, stateDir, checkpointIntervalMs: 1000, log: { info() {}, warn: (m) => console.error(m) } });
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const running = job.run();
const sourceRecords = () => job.metrics.operators.filter((m) => m.operatorId.endsWith("-source")).reduce((n, m) => n + m.recordsOut, 0);
const watcher = setInterval(() => {
  if (sourceRecords() >= records) {
    clearInterval(watcher);
    job.stop();
  }
}, 20);
await running;
const wall = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage.rss());
rmSync(stateDir, { recursive: true, force: true });
const sinkRecords = job.metrics.operators.filter((m) => m.operatorId.endsWith("-sink")).reduce((n, m) => n + m.recordsIn, 0);
console.log(JSON.stringify({ cpuSeconds: (cpu.user + cpu.system) / 1e6, wallSeconds: wall, peakRssMb: peak / 1024 / 1024, sourceRecords: sourceRecords(), sinkRecords }));
process.exit(0);
