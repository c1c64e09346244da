/**
 * Flink 2.2.1 beside Runnel on Nexmark (issue #12's target: every query ≥ 5x Flink per core).
 * Each run is a fresh process: Flink's queries (bench/flink/queries.ts) in a local mini cluster
 * (parallelism 1, object reuse, checkpoints every 10 s, a blackhole sink that counts), fed by the
 * Java port of Runnel's generator; Runnel's (bench/nexmark.ts) through bench/run-one.ts.
 *
 * Per query and engine: `--runs` runs (median) of `--events` events and one run of 1 event. CPU is
 * user + system of the whole process (the kernel's account of the child, start-up and planning
 * included); "excl. start-up" subtracts the 1-event run's CPU, so it also leaves out the JIT
 * warm-up the short run never needs. Runnel's "in job" is what `bun run bench` reports (CPU from
 * the job's start to its end, planning and loading left out).
 *
 *   flock /tmp/runnel-bench.lock bun run bench:flink q0 q5 --events 2000000 [--runs 3] [--runnel | --runnel-only]
 *     [--flink-heap 10g] [--flink-timeout 360] [--flink-runs 1]
 *     Flink's JVM heap (default 4g), a Flink run's time limit in s, Flink's runs when fewer than --runs fit the time
 *   bun run bench:flink q5 --explain       Flink's plan of each query (planning only)
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { QUERIES, SOURCE } from "../nexmark.ts";
import { sideInputRows } from "../nexmark-queries.ts";
import { javaCommand } from "./jvm.ts";
import { FLINK_QUERIES, FLINK_SOURCE } from "./queries.ts";

interface Run {
  /** CPU seconds of the whole process. */
  cpu: number;
  wall: number;
  rows: number;
  rssMb: number;
  /** Runnel: CPU seconds of the job alone; Flink: CPU seconds from job submission to its end. */
  inner: number;
}

/**
 * Flink's JVM heap (`--flink-heap`), the longest a Flink run may take (`--flink-timeout`, seconds; 0 none), and its
 * number of runs when fewer than Runnel's fit the time (`--flink-runs`; 0 as `--runs`).
 */
const flinkOptions = { heap: "4g", timeoutSeconds: 0, runs: 0 };

async function spawnMeasured(cmd: string[], timeoutSeconds = 0): Promise<{ out: string; cpu: number; wall: number; rssMb: number }> {
  const started = performance.now();
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", ...(timeoutSeconds > 0 ? { timeout: timeoutSeconds * 1000, killSignal: "SIGKILL" } : {}) });
  const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  const code = await proc.exited;
  if (proc.signalCode && timeoutSeconds > 0 && performance.now() - started >= timeoutSeconds * 1000) {
    // The CPU spent until stopped bounds the engine's events per CPU-second from above.
    const spent = proc.resourceUsage()!.cpuTime;
    const cpu = Number(spent.user + spent.system) / 1e6;
    throw new Error(`${cmd.slice(0, 2).join(" ")} … did not finish: stopped after ${timeoutSeconds} s, ${cpu.toFixed(1)} CPU-seconds (Error: time limit)`);
  }
  if (code !== 0) throw new Error(`${cmd.slice(0, 2).join(" ")} … exited ${code}:\n${err.slice(-4000)}`);
  const usage = proc.resourceUsage()!;
  return { out, cpu: Number(usage.cpuTime.user + usage.cpuTime.system) / 1e6, wall: (performance.now() - started) / 1000, rssMb: usage.maxRSS / 1024 / 1024 };
}

const lastJson = (out: string) => JSON.parse(out.trim().split("\n").pop()!);

/** Flink's statements of a query (`{dir}` the scratch folder, `{out}` the folder a writing query fills). */
const flinkSql = (query: string, events: number, dir: string) => {
  const q = FLINK_QUERIES[query]!;
  return (FLINK_SOURCE(events) + (q.setup ? `${q.setup};\n` : "") + q.sql!).replaceAll("{dir}", dir).replaceAll("{out}", join(dir, "out"));
};

/** Lines of the finished files under a folder (hidden in-progress files and _SUCCESS markers left out). */
function countLines(folder: string): number {
  let n = 0;
  // No rows, no files (the 1-event run has no bid): some writers make no folder either.
  if (!existsSync(folder)) return 0;
  for (const name of readdirSync(folder, { recursive: true, encoding: "utf8" })) {
    const path = join(folder, name);
    if (basename(name).startsWith(".") || basename(name).startsWith("_") || !statSync(path).isFile()) continue;
    const bytes = readFileSync(path);
    for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) n++;
  }
  return n;
}

/**
 * Runs one engine's process; a query writing files gets a fresh `{out}` folder, whose lines are its
 * rows (then removed, so each run starts empty).
 */
async function runMeasured(query: string, dir: string, cmd: string[], rows: (out: string) => number, timeoutSeconds = 0): Promise<Omit<Run, "inner"> & { out: string }> {
  const out = join(dir, "out");
  rmSync(out, { recursive: true, force: true });
  const r = await spawnMeasured(cmd, timeoutSeconds);
  if (!FLINK_QUERIES[query]!.output) return { ...r, rows: rows(r.out) };
  const lines = countLines(out);
  rmSync(out, { recursive: true, force: true });
  return { ...r, rows: lines };
}

async function flink(query: string, events: number, dir: string): Promise<Run> {
  const file = join(dir, `${query}.flink.sql`);
  writeFileSync(file, flinkSql(query, events, dir));
  const r = await runMeasured(query, dir, await javaCommand(["run", file], flinkOptions.heap), (out) => lastJson(out).rows, flinkOptions.timeoutSeconds);
  const j = lastJson(r.out);
  return { cpu: r.cpu, wall: r.wall, rssMb: r.rssMb, rows: r.rows, inner: j.cpuAtEnd - j.cpuAtSubmit };
}

/** Flink's optimized plan of a query (`--explain`): which operators it runs. */
async function explainFlink(query: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "runnel-flink-explain-"));
  try {
    const file = join(dir, `${query}.flink.sql`);
    writeFileSync(file, flinkSql(query, 1, dir));
    const out = (await spawnMeasured(await javaCommand(["explain", file]))).out;
    return out.slice(out.indexOf("== Optimized Physical Plan =="));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runnel(query: string, events: number, dir: string): Promise<Run> {
  const file = join(dir, `${query}.runnel.sql`);
  const sql = FLINK_QUERIES[query]!.runnel ?? QUERIES[query]!.sql;
  writeFileSync(file, SOURCE(events) + sql.replaceAll("{dir}", dir).replaceAll("{out}", join(dir, "out")));
  const r = await runMeasured(query, dir, ["bun", join(import.meta.dir, "..", "run-one.ts"), file], (out) => lastJson(out).sinkRecords);
  const j = lastJson(r.out);
  if (events > 1 && j.sourceRecords !== events) throw new Error(`${query}: Runnel's source emitted ${j.sourceRecords} of ${events} events`);
  // Files written: the lines on disk must be every row the sink took.
  if (r.rows !== j.sinkRecords) throw new Error(`${query}: Runnel's sink took ${j.sinkRecords} rows but its files hold ${r.rows} lines`);
  return { cpu: r.cpu, wall: r.wall, rssMb: r.rssMb, rows: r.rows, inner: j.cpuSeconds };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface Figures {
  /** Events per CPU-second of the whole process (median run). */
  perCore: number;
  /** The same with the 1-event run's CPU subtracted. */
  perCoreWarm: number;
  /** Events per CPU-second of the job alone (Runnel) or from submission (Flink). */
  perCoreInner: number;
  /** The same with the 1-event run's job (or from-submission) CPU subtracted: leaves out planning's noisy JIT. */
  perCoreInnerWarm: number;
  cpu: number;
  startupCpu: number;
  rows: number;
  rssMb: number;
  wall: number;
}

async function measure(engine: typeof flink, query: string, events: number, runs: number): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), "runnel-flink-bench-"));
  try {
    writeFileSync(join(dir, "side_input.json"), sideInputRows().map((r) => JSON.stringify(r)).join("\n") + "\n");
    const empty = await engine(query, 1, dir);
    const all: Run[] = [];
    for (let i = 0; i < runs; i++) all.push(await engine(query, events, dir));
    const cpu = median(all.map((r) => r.cpu));
    return {
      perCore: events / cpu,
      perCoreWarm: events / (cpu - empty.cpu),
      perCoreInner: events / median(all.map((r) => r.inner)),
      perCoreInnerWarm: events / (median(all.map((r) => r.inner)) - empty.inner),
      cpu,
      startupCpu: empty.cpu,
      rows: median(all.map((r) => r.rows)),
      rssMb: median(all.map((r) => r.rssMb)),
      wall: median(all.map((r) => r.wall)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const k = (v: number) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : `${Math.round(v / 1e3)}k`);

if (import.meta.main) {
  const args = process.argv.slice(2);
  let events = 10_000_000;
  let runs = 3;
  let withRunnel = false;
  // Runnel's side alone, to set beside Flink figures measured before (Flink's runs take minutes a query).
  let runnelOnly = false;
  let explain = false;
  const picked: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--events") events = Number(args[++i]);
    else if (args[i] === "--runs") runs = Number(args[++i]);
    else if (args[i] === "--runnel") withRunnel = true;
    else if (args[i] === "--runnel-only") runnelOnly = withRunnel = true;
    else if (args[i] === "--explain") explain = true;
    // q9 and q16 ran out of the default 4 GB heap at 10M events.
    else if (args[i] === "--flink-heap") flinkOptions.heap = args[++i]!;
    else if (args[i] === "--flink-timeout") flinkOptions.timeoutSeconds = Number(args[++i]);
    else if (args[i] === "--flink-runs") flinkOptions.runs = Number(args[++i]);
    else picked.push(args[i]!);
  }
  const queries = picked.length ? picked : Object.keys(FLINK_QUERIES);
  for (const q of queries) if (!FLINK_QUERIES[q]) throw new Error(`unknown query ${q}; choose from ${Object.keys(FLINK_QUERIES).join(", ")}`);
  if (explain) {
    for (const q of queries) if (!FLINK_QUERIES[q]!.skip) console.log(`== ${q}\n${await explainFlink(q)}`);
    process.exit(0);
  }
  console.log(`${events.toLocaleString("en")} events, median of ${runs} (Flink ${flinkOptions.runs || runs}), events/s per core (whole process | excl. start-up | in job)`);
  console.log(`| query | Flink | Flink excl. start-up | Flink start-up CPU s | Flink rows | Runnel | Runnel excl. start-up | Runnel in job | Runnel rows | ratio | ratio excl. start-up |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`);
  for (const q of queries) {
    const spec = FLINK_QUERIES[q]!;
    if (spec.skip) {
      console.log(`| ${q} | skipped: ${spec.skip} |||||||||| `);
      continue;
    }
    let f: Figures | null, r: Figures | null;
    try {
      f = runnelOnly ? null : await measure(flink, q, events, flinkOptions.runs || runs);
      r = withRunnel ? await measure(runnel, q, events, runs) : null;
    } catch (e) {
      // One failing query must not cost the others' figures (a run can take many minutes).
      console.log(`| ${q} | failed: ${String(e).split("\n").find((l) => /Exception|Error/.test(l))?.slice(0, 300)} |||||||||| `);
      continue;
    }
    console.log(
      (f ? `| ${q} | ${k(f.perCore)} | ${k(f.perCoreWarm)} | ${f.startupCpu.toFixed(1)} | ${f.rows.toLocaleString("en")} | ` : `| ${q} | | | | | `) +
        (r
          ? `${k(r.perCore)} | ${k(r.perCoreWarm)} | ${k(r.perCoreInner)} | ${r.rows.toLocaleString("en")} | ` +
            (f ? `${(r.perCore / f.perCore).toFixed(1)}x | ${(r.perCoreWarm / f.perCoreWarm).toFixed(1)}x |` : "| |")
          : "|||||"),
    );
    console.error(JSON.stringify({ query: q, events, flink: f, runnel: r }));
  }
}
