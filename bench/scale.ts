/**
 * Scaling across cores (issue 11): Nexmark q5 and q11 and the Kafka filter
 * pipeline at parallelism 1 (one process, no network) and 2 (two worker
 * processes), interleaved in the same run, repeated; then the network exchange
 * alone. Prints medians: events/s wall clock (from the moment every worker runs
 * to the end: start-up excluded) and per core (events ÷ CPU seconds of the job
 * manager and its workers over the same span), the scaling ratio, and an
 * estimate on paper of per-core efficiency at 8 workers from the measured
 * per-worker cost. Beside parallelism 1, the single-process benchmark's harness
 * (bench/run-one.ts, start-up included) on the same query, for the "p=1 within
 * 5% of one process" check. The machine's load is printed with each repetition.
 *
 * Also the machine's ceiling: two independent parallelism-1 jobs at once,
 * each on half the events (no exchange, nothing shared; for Kafka, each job
 * reads its own topic of half the records from the one broker). No plan at parallelism 2 can beat what two copies of parallelism 1
 * get from the same two cores, so its ratio to parallelism 1 bounds the
 * scaling any exchange could reach on this machine.
 *
 *   bun run bench:scale [--reps 3] [--events 10000000] [--records 2000000] [q5 q11 kafka exchange]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Partitioners } from "kafkajs";
import { QUERIES } from "./nexmark.ts";
import { NEXMARK_VIEWS } from "./nexmark-queries.ts";
import { closeKafkaKit, createTopic, KAFKA, testKafka } from "../test/kit/kafka.ts";

const argv = process.argv.slice(2);
const flag = (name: string, dflt: number) => {
  const i = argv.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(argv[i + 1]);
  argv.splice(i, 2);
  return v;
};
const REPS = flag("--reps", 3);
const EVENTS = flag("--events", 10_000_000);
const RECORDS = flag("--records", 2_000_000);
const EXCHANGE_ROWS = flag("--exchange-rows", 20_000_000);
const picked = argv.filter((a) => !a.startsWith("--"));
const want = (c: string) => picked.length === 0 || picked.includes(c);

const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number) => Math.round(n).toLocaleString("en");

interface Run {
  wallSeconds: number;
  managerCpuSeconds: number;
  workerCpuSeconds: number;
  perWorkerCpuSeconds: number[];
  sourceRecords: number;
  runningFromMs: number;
  runningUntilMs: number;
}

async function runScale(sql: string, p: number, stopAfter?: number): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), "runnel-bench-scale-"));
  const file = join(dir, "pipeline.sql");
  writeFileSync(file, sql);
  const args = ["bun", join(import.meta.dir, "scale-run.ts"), file, String(p), String(p), ...(stopAfter ? [String(stopAfter)] : [])];
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  const code = await proc.exited;
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0) throw new Error(`scale-run at parallelism ${p} failed with exit code ${code}`);
  return JSON.parse(out.trim().split("\n").pop()!);
}

/** The single-process benchmark's harness (bench/run-one.ts, as `bun run bench`): its events/s per core, start-up included. */
async function runSingleProcessBench(sql: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "runnel-bench-scale-"));
  const file = join(dir, "pipeline.sql");
  writeFileSync(file, sql);
  const proc = Bun.spawn(["bun", join(import.meta.dir, "run-one.ts"), file], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  const code = await proc.exited;
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0) throw new Error(`run-one failed with exit code ${code}`);
  const s = JSON.parse(out.trim().split("\n").pop()!);
  return s.sourceRecords / s.cpuSeconds;
}

interface Case {
  name: string;
  title: string;
  /** Rows crossing workers per event at parallelism p (a hash shuffle sends (p-1)/p of its rows away; a forward edge none). */
  crossing: (p: number) => number;
  sql: () => Promise<string>;
  /** The same pipeline on half the input, the first or second (the machine's ceiling: two of them at once). */
  halve?: (half: 0 | 1) => Promise<string>;
  stopAfter?: number;
}

const nexmarkSql = (q: string, events: number) =>
  `CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '0', message_count = '${events}');\nCREATE TABLE sink WITH (connector = 'blackhole');\n${NEXMARK_VIEWS}\n${QUERIES[q]!.sql}`;
const nexmark = (q: string): Case => ({
  name: q,
  title: `Nexmark ${q}: ${QUERIES[q]!.title}`,
  crossing: (p) => (p - 1) / p,
  sql: async () => nexmarkSql(q, EVENTS),
  halve: async () => nexmarkSql(q, Math.floor(EVENTS / 2)),
});

const kafkaInputs = new Map<string, string>();
/** A 4-partition topic holding records [from, to) of the input (made once per run of the bench). */
async function kafkaTopic(name: string, from: number, to: number): Promise<string> {
  const made = kafkaInputs.get(name);
  if (made) return made;
  const topic = await createTopic(name, 4);
  const producer = testKafka("bench-scale-input").producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const base = Date.parse("2024-01-01T00:00:00Z");
  for (let i = from; i < to; i += 20_000) {
    const messages = [];
    for (let j = i; j < Math.min(to, i + 20_000); j++) {
      messages.push({ partition: j % 4, value: `{"id":${j},"user":"user-${j % 1000}","amount":${(j * 7919) % 1000},"t":"${new Date(base + j).toISOString()}"}` });
    }
    await producer.send({ topic, messages, acks: 1 });
  }
  await producer.disconnect();
  kafkaInputs.set(name, topic);
  return topic;
}

/** The Kafka filter pipeline from `input` into a new topic. */
async function kafkaSql(input: string, output: string): Promise<string> {
  const out = await createTopic(output, 4);
  const opts = `bootstrap_servers = '${KAFKA}'`;
  return `CREATE TABLE src (id BIGINT, user TEXT, amount BIGINT, t TIMESTAMP) WITH (connector = 'kafka', ${opts}, topic = '${input}', type = 'source', format = 'json', 'source.offset' = 'earliest', event_time_field = 't');
CREATE TABLE out (id BIGINT, user TEXT, doubled BIGINT) WITH (connector = 'kafka', ${opts}, topic = '${out}', type = 'sink', format = 'json', 'sink.commit_mode' = 'at_least_once');
INSERT INTO out SELECT id, user, amount * 2 AS doubled FROM src WHERE amount % 4 <> 0;`;
}

const HALF_RECORDS = Math.floor(RECORDS / 2);
const kafka: Case = {
  name: "kafka",
  title: "Kafka JSON → filter + projection → Kafka (at_least_once), 4 partitions",
  crossing: () => 0,
  stopAfter: RECORDS,
  sql: async () => kafkaSql(await kafkaTopic("bench-scale-in", 0, RECORDS), "bench-scale-out"),
  // Two topics of half the records each (4 partitions, as the whole): the broker serves both jobs, as it serves p=2.
  halve: async (half) =>
    kafkaSql(await kafkaTopic(`bench-scale-in-half-${half}`, half * HALF_RECORDS, (half + 1) * HALF_RECORDS), `bench-scale-out-half-${half}`),
};

const cases = [nexmark("q5"), nexmark("q11"), kafka].filter((c) => want(c.name));
const lines: string[] = [];
const say = (l: string) => {
  console.error(l);
  lines.push(l);
};
say(`bench:scale on ${navigator.hardwareConcurrency} cores, Bun ${Bun.version}; ${REPS} repetitions, medians; load (1/5/15 min) at the start: ${load()}`);

const table: string[] = [];
for (const c of cases) {
  const events = c.stopAfter ?? EVENTS;
  const runs: Record<number, Run[]> = { 1: [], 2: [] };
  /** Events/s of two independent p=1 jobs on half the events each, run at once (until the later ends). */
  const ceiling: number[] = [];
  const single: number[] = [];
  for (let r = 0; r < REPS; r++) {
    if (!c.stopAfter) {
      single.push(await runSingleProcessBench(await c.sql()));
      say(`${c.name} single-process bench rep ${r + 1}: ${fmt(single.at(-1)!)} events/s per core, load ${load()}`);
    }
    for (const p of [1, 2]) {
      const run = await runScale(await c.sql(), p, c.stopAfter);
      if (run.sourceRecords < events) throw new Error(`${c.name} at parallelism ${p}: the sources read ${run.sourceRecords} of ${events}`);
      runs[p]!.push(run);
      say(`${c.name} p=${p} rep ${r + 1}: ${JSON.stringify(run)} load ${load()}`);
    }
    if (c.halve) {
      const sqls = [await c.halve(0), await c.halve(1)];
      const halfStop = c.stopAfter === undefined ? undefined : Math.floor(c.stopAfter / 2);
      const halves = await Promise.all(sqls.map((sql) => runScale(sql, 1, halfStop)));
      const halfEvents = Math.floor(events / 2);
      for (const h of halves) if (h.sourceRecords < halfEvents) throw new Error(`${c.name}, a half job: the sources read ${h.sourceRecords} of ${halfEvents}`);
      // From the first to start running to the last to end: neither's start-up is inside the other's span uncounted.
      const span = (Math.max(...halves.map((x) => x.runningUntilMs)) - Math.min(...halves.map((x) => x.runningFromMs))) / 1000;
      ceiling.push(halves.reduce((n, x) => n + x.sourceRecords, 0) / span);
      say(`${c.name} two p=1 jobs on half the events each, at once, rep ${r + 1}: ${fmt(ceiling.at(-1)!)} events/s (${span.toFixed(2)} s from the first running to the last done; each ran ${halves.map((x) => x.wallSeconds.toFixed(2)).join(" s and ")} s) load ${load()}`);
    }
  }
  const wall = (p: number) => median(runs[p]!.map((x) => x.sourceRecords / x.wallSeconds));
  const cpu = (x: Run) => x.managerCpuSeconds + x.workerCpuSeconds;
  const perCore = (p: number) => median(runs[p]!.map((x) => x.sourceRecords / cpu(x)));
  // Per-worker cost on paper: CPU per event at p=1 (c1), and what p=2 adds per event (x2), split into a part
  // that grows with the rows crossing workers and a fixed part per worker; 8 workers send (8-1)/8 of a shuffle's rows away.
  const c1 = 1 / perCore(1);
  const x2 = 1 / perCore(2) - c1;
  const x8 = c.crossing(2) > 0 ? (x2 * c.crossing(8)) / c.crossing(2) : x2;
  const eff8 = c1 / (c1 + x8);
  table.push(
    `| ${c.title} | ${fmt(events)} | ${fmt(wall(1))} | ${fmt(wall(2))} | **${(wall(2) / wall(1)).toFixed(2)}x** | ${ceiling.length ? `${fmt(median(ceiling))} (${(median(ceiling) / wall(1)).toFixed(2)}x)` : "n/a"} | ${fmt(perCore(1))} | ${single.length ? fmt(median(single)) : "n/a"} | ${fmt(perCore(2))} | ${Math.round((100 * perCore(2)) / perCore(1))}% | ${Math.round(100 * eff8)}% |`,
  );
}

if (want("exchange")) {
  const ex: { rowsPerSecond: number; rowsPerCoreSecond: number; senderCpuSeconds: number; rows: number; rowBytes: number; batchRows: number }[] = [];
  for (let r = 0; r < REPS; r++) {
    const proc = Bun.spawn(["bun", join(import.meta.dir, "exchange-run.ts"), String(EXCHANGE_ROWS)], { stdout: "pipe", stderr: "inherit" });
    const out = await new Response(proc.stdout).text();
    if ((await proc.exited) !== 0) throw new Error("exchange-run failed");
    const x = JSON.parse(out.trim().split("\n").pop()!);
    ex.push(x);
    say(`exchange rep ${r + 1}: ${JSON.stringify(x)} load ${load()}`);
  }
  table.push(
    `| network exchange alone: 2 workers, forward edge, ${ex[0]!.rowBytes}-byte rows in batches of ${ex[0]!.batchRows} | ${fmt(EXCHANGE_ROWS)} | | ${fmt(median(ex.map((x) => x.rowsPerSecond)))} | | | | | **${fmt(median(ex.map((x) => x.rowsPerCoreSecond)))}** (receiver) | | |`,
  );
}
await closeKafkaKit();
say(`load at the end: ${load()}`);
console.log(lines.join("\n"));
console.log("");
console.log("| pipeline | events | p=1 events/s (wall) | p=2 events/s (wall) | p=2 ÷ p=1 | ceiling: two p=1 jobs on half each, at once (÷ p=1) | p=1 events/s per core | single-process bench per core | p=2 events/s per core | per-core efficiency p=2 | per-core efficiency p=8 (on paper) |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const t of table) console.log(t);
