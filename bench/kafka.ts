/**
 * Kafka benchmark against the test broker (scripts/services.sh start kafka):
 *   filter     Kafka JSON → filter + projection → Kafka, at_least_once and exactly_once
 *   tumble     Kafka JSON → 1-second tumbling count → blackhole
 * Each pipeline runs in its own process (clean peak memory) with parallelism 1.
 * Records/s per core = records read ÷ CPU seconds of the job (user + system,
 * from Job construction to its stop: kafka-run.ts), and, in the column after,
 * ÷ CPU seconds of the whole job process (start-up, module loading and SQL
 * planning included); the broker runs on the same two cores and is not counted.
 *
 *   bun run bench:kafka [--records 1000000] [--input TOPIC] [--repeat N] [--profile] [filter-alo filter-eos tumble]
 * --input reuses a topic an earlier run wrote (its name is printed), so repeated
 * measurements skip the ~20 s of writing the input. --repeat runs each pipeline
 * N times, going round the pipelines, and reports the run with the median CPU time (all runs on stderr):
 * on a shared machine single runs vary by a third.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
// --profile writes one CPU profile per pipeline (Chrome DevTools format) here.
const PROFILE_DIR = join(tmpdir(), "runnel-kafka-profiles");
import { join } from "node:path";
import { Partitioners } from "kafkajs";
import { closeKafkaKit, createTopic, endOffsets, KAFKA, readAll, testKafka } from "../test/kit/kafka.ts";

const argv = process.argv.slice(2);
let records = 1_000_000;
const at = argv.indexOf("--records");
if (at >= 0) {
  records = Number(argv[at + 1]);
  argv.splice(at, 2);
}
let repeat = 1;
const repeatAt = argv.indexOf("--repeat");
if (repeatAt >= 0) {
  repeat = Number(argv[repeatAt + 1]);
  argv.splice(repeatAt, 2);
}
let reuse: string | undefined;
const inputAt = argv.indexOf("--input");
if (inputAt >= 0) {
  reuse = argv[inputAt + 1];
  argv.splice(inputAt, 2);
}
const profile = argv.includes("--profile");
const selected = argv.filter((a) => !a.startsWith("--"));

const kafkaOpts = `bootstrap_servers = '${KAFKA}'`;
const source = (topic: string) =>
  `CREATE TABLE src (id BIGINT, user TEXT, amount BIGINT, t TIMESTAMP) WITH (connector = 'kafka', ${kafkaOpts}, topic = '${topic}', type = 'source', format = 'json', 'source.offset' = 'earliest', event_time_field = 't');\n`;
const filterSink = (topic: string, mode: string) =>
  `CREATE TABLE out (id BIGINT, user TEXT, doubled BIGINT) WITH (connector = 'kafka', ${kafkaOpts}, topic = '${topic}', type = 'sink', format = 'json', 'sink.commit_mode' = '${mode}');
INSERT INTO out SELECT id, user, amount * 2 AS doubled FROM src WHERE amount % 4 <> 0;`;

interface Case {
  name: string;
  title: string;
  sql: (input: string) => Promise<{ sql: string; output?: string }>;
}

const CASES: Case[] = [
  { name: "filter-alo", title: "filter+projection → Kafka, at_least_once", sql: async (input) => { const output = await createTopic("bench-out", 4); return { sql: source(input) + filterSink(output, "at_least_once"), output }; } },
  { name: "filter-eos", title: "filter+projection → Kafka, exactly_once", sql: async (input) => { const output = await createTopic("bench-out", 4); return { sql: source(input) + filterSink(output, "exactly_once"), output }; } },
  {
    name: "tumble",
    title: "1 s tumbling count → blackhole",
    sql: async (input) => ({ sql: source(input) + `CREATE TABLE sink WITH (connector = 'blackhole');\nINSERT INTO sink SELECT tumble(INTERVAL '1' SECOND) AS w, count(*) AS n FROM src GROUP BY w;` }),
  },
];

/** The same record's JSON text as prepareInput writes. */
const inputRecord = (j: number, base: number) => `{"id":${j},"user":"user-${j % 1000}","amount":${(j * 7919) % 1000},"t":"${new Date(base + j).toISOString()}"}`;

/**
 * The bare loop the filter pipelines are measured against: bytes → JSON.parse
 * → filter → JSON.stringify → bytes, records/s per core, in this process: a
 * reference for what the machine gives at the moment of the measurement (on a
 * shared machine it moves as much as the pipelines do).
 */
function bareLoop(n: number): number {
  const base = Date.parse("2024-01-01T00:00:00Z");
  const inputs = Array.from({ length: n }, (_, j) => Buffer.from(inputRecord(j, base)));
  const decoder = new TextDecoder();
  const out = Buffer.allocUnsafe(1 << 16);
  let kept = 0;
  const cpu0 = process.cpuUsage();
  for (const bytes of inputs) {
    const o = JSON.parse(decoder.decode(bytes));
    if (o.amount % 4 === 0) continue;
    kept += out.write(JSON.stringify({ id: o.id, user: o.user, doubled: o.amount * 2 }), 0, "utf8") > 0 ? 1 : 0;
  }
  const cpu = process.cpuUsage(cpu0);
  if (kept === 0) throw new Error("the bare loop kept nothing");
  return n / ((cpu.user + cpu.system) / 1e6);
}

async function prepareInput(n: number): Promise<string> {
  const topic = await createTopic("bench-in", 4);
  const producer = testKafka("bench-input").producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const base = Date.parse("2024-01-01T00:00:00Z");
  const started = performance.now();
  const chunk = 20_000;
  for (let i = 0; i < n; i += chunk) {
    const messages = [];
    for (let j = i; j < Math.min(n, i + chunk); j++) {
      messages.push({ partition: j % 4, value: inputRecord(j, base) });
    }
    await producer.send({ topic, messages, acks: 1 });
  }
  await producer.disconnect();
  console.error(`input: ${n} JSON records in ${topic} (${((performance.now() - started) / 1000).toFixed(1)} s to write)`);
  return topic;
}

const input = reuse ?? (await prepareInput(records));
const chosen = CASES.filter((c) => selected.length === 0 || selected.includes(c.name));
const runsOf = new Map<string, { s: any; written: string }[]>(chosen.map((c) => [c.name, []]));
// Repeats go round the pipelines (a b c a b c, not a a a b b b): the first run after the input
// was written meets a broker still flushing it, and would otherwise always be the same pipeline's.
for (let r = 0; r < repeat; r++) {
  for (const c of chosen) {
    const { sql, output } = await c.sql(input);
    const dir = mkdtempSync(join(tmpdir(), "runnel-bench-kafka-"));
    const file = join(dir, `${c.name}.sql`);
    writeFileSync(file, sql);
    const cmd = profile ? ["bun", "--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`, "bench/kafka-run.ts", file, String(records)] : ["bun", "bench/kafka-run.ts", file, String(records)];
    const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "inherit" });
    const out = await new Response(proc.stdout).text();
    const code = await proc.exited;
    rmSync(dir, { recursive: true, force: true });
    if (code !== 0) throw new Error(`${c.name} failed with exit code ${code}`);
    const s = JSON.parse(out.trim().split("\n").pop()!);
    s.processCpuSeconds = Number(proc.resourceUsage()!.cpuTime.total) / 1e6;
    let written = "";
    if (output) {
      const ends = await endOffsets(output);
      const high = ends.reduce((n, e) => n + e.high, 0);
      written = ` | output ${high} offsets`;
      if (c.name === "filter-eos") written += `, ${(await readAll(output, true)).length} committed records`;
    }
    console.error(
      `${c.name}: ${JSON.stringify(s)}${written} | ${Math.round(s.sourceRecords / s.cpuSeconds).toLocaleString("en")} records/s per core` +
        ` (whole process ${Math.round(s.sourceRecords / s.processCpuSeconds).toLocaleString("en")})`,
    );
    runsOf.get(c.name)!.push({ s, written });
  }
}
const rows: string[] = [];
for (const c of chosen) {
  const runs = runsOf.get(c.name)!;
  const { s } = runs.sort((a, b) => a.s.cpuSeconds - b.s.cpuSeconds)[Math.floor((runs.length - 1) / 2)]!;
  const perCore = s.sourceRecords / s.cpuSeconds;
  const range = runs.length > 1 ? ` (runs ${runs.map((x) => `${Math.round(x.s.sourceRecords / x.s.cpuSeconds / 1000)}k`).join(", ")})` : "";
  const processRuns = runs.map((x) => x.s.sourceRecords / x.s.processCpuSeconds).sort((a, b) => a - b);
  const perProcess = processRuns[Math.floor((processRuns.length - 1) / 2)]!;
  rows.push(
    `| ${c.title} | ${s.sourceRecords.toLocaleString("en")} | ${s.wallSeconds.toFixed(1)} | ${s.cpuSeconds.toFixed(1)} | ${Math.round(perCore).toLocaleString("en")}${range} | ${Math.round(perProcess).toLocaleString("en")} | ${Math.round(s.sourceRecords / s.wallSeconds).toLocaleString("en")} | ${Math.round(s.peakRssMb)} |`,
  );
}
await closeKafkaKit();
const bares = Array.from({ length: Math.max(3, repeat) }, () => bareLoop(records)).sort((a, b) => a - b);
const bare = bares[Math.floor((bares.length - 1) / 2)]!;
console.error(`bare loop, median of ${bares.length} (bytes → JSON.parse → filter → JSON.stringify → bytes, no Kafka, no engine): ${Math.round(bare).toLocaleString("en")} records/s per core`);
if (profile) console.error(`CPU profiles in ${PROFILE_DIR}`);
console.log("| pipeline | records | wall s | CPU s | records/s per core | per core, whole process | records/s wall | peak RSS MB |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const r of rows) console.log(r);
