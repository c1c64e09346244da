/**
 * The Nexmark benchmark (the 23 queries of bench/nexmark-queries.ts) on the
 * built-in generator. Each query runs in its own process (clean peak memory),
 * into a blackhole sink (q10: Parquet files in a scratch directory). Reports events/s per core
 * (events ÷ CPU seconds of the process, user + system) and peak RSS.
 *
 * The generator runs unthrottled (event_rate 0), which spaces event times 1 µs
 * apart: 10M events span 10 s of event time. Windows are the Nexmark ones scaled
 * from seconds to milliseconds so that hundreds of windows open, fire and free
 * their state during a run, as they would over hours at a real event rate.
 *
 *   bun run bench                 all queries, default event count
 *   bun run bench q1 q5 --events 2000000
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { NEXMARK_QUERIES, NEXMARK_VIEWS, sideInputRows } from "./nexmark-queries.ts";

// base_time: Flink's port of the generator starts at the same instant (bench/flink), so windowed
// queries cut the events at the same offsets and row counts compare exactly.
export const SOURCE = (events: number) => `CREATE TABLE nexmark WITH (
  connector = 'nexmark',
  event_rate = '0',
  message_count = '${events}',
  base_time = '1700000000000000'
);
CREATE TABLE sink WITH (connector = 'blackhole');
${NEXMARK_VIEWS}`;

/** The 23 Nexmark queries into a blackhole sink (q10 into Parquet files), then the earlier simplified forms kept for comparison. */
export const QUERIES: Record<string, { title: string; sql: string }> = {
  ...Object.fromEntries(
    Object.entries(NEXMARK_QUERIES).map(([name, q]) => [name, { title: q.title, sql: `${q.setup ?? ""}\nINSERT INTO ${q.into ?? "sink"} ${q.runnel};` }]),
  ),
  "q5-count": {
    title: "(earlier q5) bids per auction per hop window, without the top-1",
    sql: `INSERT INTO sink SELECT auction, hop(INTERVAL '2' MILLISECOND, INTERVAL '10' MILLISECOND) AS window, count(*) AS num FROM bid GROUP BY auction, window;`,
  },
  "q7-max": {
    title: "(earlier q7) highest bid per 10 ms window, without joining back",
    sql: `INSERT INTO sink SELECT tumble(INTERVAL '10' MILLISECOND) AS window, max(price) AS max_price FROM bid GROUP BY window;`,
  },
};

interface Result {
  query: string;
  events: number;
  wallSeconds: number;
  cpuSeconds: number;
  peakRssMb: number;
  sourceRecords: number;
  sinkRecords: number;
}

async function runOne(query: string, events: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), "runnel-bench-"));
  const file = join(dir, `${query}.sql`);
  writeFileSync(join(dir, "side_input.json"), sideInputRows().map((r) => JSON.stringify(r)).join("\n") + "\n");
  writeFileSync(file, SOURCE(events) + QUERIES[query]!.sql.replaceAll("{dir}", dir));
  const started = performance.now();
  const proc = Bun.spawn(["bun", "bench/run-one.ts", file], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  const code = await proc.exited;
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0) throw new Error(`${query} failed with exit code ${code}`);
  const stats = JSON.parse(out.trim().split("\n").pop()!);
  return { query, events, wallSeconds: (performance.now() - started) / 1000, ...stats };
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  let events = 10_000_000;
  const picked: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--events") events = Number(args[++i]);
    else picked.push(args[i]!);
  }
  const queries = picked.length ? picked : Object.keys(QUERIES);
  console.log(`| query | what | events | rows to sink | events/s per core | wall s | peak RSS MB |`);
  console.log(`|---|---|---:|---:|---:|---:|---:|`);
  for (const q of queries) {
    if (!QUERIES[q]) throw new Error(`unknown query ${q}; choose from ${Object.keys(QUERIES).join(", ")}`);
    const r = await runOne(q, events);
    if (r.sourceRecords !== r.events) throw new Error(`${q}: source emitted ${r.sourceRecords} of ${r.events} events`);
    const perCore = Math.round(r.events / r.cpuSeconds);
    console.log(
      `| ${q} | ${QUERIES[q]!.title} | ${r.events.toLocaleString("en")} | ${r.sinkRecords.toLocaleString("en")} | ${perCore.toLocaleString("en")} | ${r.wallSeconds.toFixed(1)} | ${r.peakRssMb.toFixed(0)} |`,
    );
  }
}
