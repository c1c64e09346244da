/** Runs one pipeline in this process and prints CPU seconds and peak RSS as JSON (used by bench/nexmark.ts). */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Job } from "../core/dataflow/job.ts";
import { createRegistry } from "../core/registry/loader.ts";
import { planSql } from "../core/sql/index.ts";
import { nexmarkUdfs } from "./nexmark-udfs.ts";

const file = process.argv[2]!;
const registry = await createRegistry();
// q14's UDF.
registry.register(nexmarkUdfs);
const pipeline = planSql(readFileSync(file, "utf8"), registry);
const stateDir = mkdtempSync(join(tmpdir(), "runnel-bench-state-"));
let peak = process.memoryUsage().rss;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
const cpu0 = process.cpuUsage();
const job = new Job(pipeline, registry, { parallelism: 1, stateDir, checkpointIntervalMs: Number(process.env.RUNNEL_BENCH_CHECKPOINT_MS ?? 10_000) });
await job.run();
const cpu = process.cpuUsage(cpu0);
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage().rss);
rmSync(stateDir, { recursive: true, force: true });
// Counted by the operators themselves, so the table shows what really flowed.
const ops = job.metrics.operators;
// The generator's events (q13 also reads a side input file).
const first = ops.filter((m) => m.operatorId.endsWith("-source") && m.operatorName.includes("(nexmark)"));
const last = ops.filter((m) => m.operatorId.endsWith("-sink"));
// Events the generator left out (a query's pushed-down `bid IS NOT NULL`) were numbered all the same.
const sourceRecords = first.reduce((n, m) => n + m.recordsOut + (m.connector.events_left_out ?? 0), 0);
const sinkRecords = last.reduce((n, m) => n + m.recordsIn, 0);
console.log(
  JSON.stringify({ cpuSeconds: (cpu.user + cpu.system) / 1e6, peakRssMb: peak / 1024 / 1024, sourceRecords, sinkRecords }),
);
