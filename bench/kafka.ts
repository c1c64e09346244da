/**
 * Kafka benchmark against the test broker (scripts/services.sh start kafka):
 *   filter     Kafka JSON → filter + projection → Kafka, at_least_once and exactly_once
 *   tumble     Kafka JSON → 1-second tumbling count → blackhole
 * Each pipeline runs in its own process (clean peak memory) with parallelism 1.
 * Records/s per core = records read ÷ CPU seconds of the job process (user +
 * system); the broker runs on the same two cores and is not counted.
 *
 *   bun run bench:kafka [--records 1000000] [--input TOPIC] [--profile] [filter-alo filter-eos tumble]
 * --input reuses a topic an earlier run wrote (its name is printed), so repeated
 * measurements skip the ~20 s of writing the input.
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
      messages.push({ partition: j % 4, value: `{"id":${j},"user":"user-${j % 1000}","amount":${(j * 7919) % 1000},"t":"${new Date(base + j).toISOString()}"}` });
    }
    await producer.send({ topic, messages, acks: 1 });
  }
  await producer.disconnect();
  console.error(`input: ${n} JSON records in ${topic} (${((performance.now() - started) / 1000).toFixed(1)} s to write)`);
  return topic;
}

const input = reuse ?? (await prepareInput(records));
const rows: string[] = [];
for (const c of CASES.filter((c) => selected.length === 0 || selected.includes(c.name))) {
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
  let written = "";
  if (output) {
    const ends = await endOffsets(output);
    const high = ends.reduce((n, e) => n + e.high, 0);
    written = ` | output ${high} offsets`;
    if (c.name === "filter-eos") written += `, ${(await readAll(output, true)).length} committed records`;
  }
  const perCore = s.sourceRecords / s.cpuSeconds;
  rows.push(
    `| ${c.title} | ${s.sourceRecords.toLocaleString("en")} | ${s.wallSeconds.toFixed(1)} | ${s.cpuSeconds.toFixed(1)} | ${Math.round(perCore).toLocaleString("en")} | ${Math.round(s.sourceRecords / s.wallSeconds).toLocaleString("en")} | ${Math.round(s.peakRssMb)} |`,
  );
  console.error(`${c.name}: ${JSON.stringify(s)}${written}`);
}
await closeKafkaKit();
if (profile) console.error(`CPU profiles in ${PROFILE_DIR}`);
console.log("| pipeline | records | wall s | CPU s | records/s per core | records/s wall | peak RSS MB |");
console.log("|---|---:|---:|---:|---:|---:|---:|");
for (const r of rows) console.log(r);
