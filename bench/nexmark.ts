/**
 * Nexmark-style benchmark on the built-in generator. Each query runs in its own
 * process (clean peak memory), into a blackhole sink. Reports events/s per core
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

const SOURCE = (events: number) => `CREATE TABLE nexmark WITH (
  connector = 'nexmark',
  event_rate = '0',
  message_count = '${events}'
);
CREATE TABLE sink WITH (connector = 'blackhole');
`;

export const QUERIES: Record<string, { title: string; sql: string }> = {
  q0: { title: "passthrough", sql: `INSERT INTO sink SELECT * FROM nexmark;` },
  q1: {
    title: "projection (currency conversion)",
    sql: `INSERT INTO sink SELECT bid.auction, bid.bidder, bid.price * 908 / 1000 AS price_euro, bid.datetime
FROM nexmark WHERE bid IS NOT NULL;`,
  },
  q2: {
    title: "filter",
    sql: `INSERT INTO sink SELECT bid.auction, bid.price FROM nexmark
WHERE bid IS NOT NULL AND bid.auction % 123 = 0;`,
  },
  q5: {
    title: "hop windows: bids per auction (2 ms slide, 10 ms width)",
    sql: `INSERT INTO sink SELECT auction, hop(INTERVAL '2' MILLISECOND, INTERVAL '10' MILLISECOND) AS window, count(*) AS num
FROM (SELECT bid.auction AS auction FROM nexmark WHERE bid IS NOT NULL)
GROUP BY auction, window;`,
  },
  q7: {
    title: "highest bid per 10 ms tumbling window",
    sql: `INSERT INTO sink SELECT tumble(INTERVAL '10' MILLISECOND) AS window, max(price) AS max_price
FROM (SELECT bid.price AS price FROM nexmark WHERE bid IS NOT NULL)
GROUP BY window;`,
  },
  q7join: {
    title: "highest bid per 10 ms tumbling window joined back to its bids (window join)",
    sql: `INSERT INTO sink SELECT b.auction, b.bidder, b.price, b.window
FROM (SELECT tumble(INTERVAL '10' MILLISECOND) AS window, auction, bidder, price
      FROM (SELECT bid.auction AS auction, bid.bidder AS bidder, bid.price AS price FROM nexmark WHERE bid IS NOT NULL)
      GROUP BY window, auction, bidder, price) b
JOIN (SELECT tumble(INTERVAL '10' MILLISECOND) AS window, max(price) AS max_price
      FROM (SELECT bid.price AS price FROM nexmark WHERE bid IS NOT NULL) GROUP BY window) m
ON b.price = m.max_price;`,
  },
  q3: {
    title: "local item suggestion: auctions in category 10 JOIN their sellers in OR/ID/CA (event-history join)",
    sql: `INSERT INTO sink SELECT p.name, p.city, p.state, a.id
FROM (SELECT auction.id AS id, auction.seller AS seller FROM nexmark WHERE auction IS NOT NULL AND auction.category = 10) a
JOIN (SELECT person.id AS id, person.name AS name, person.city AS city, person.state AS state FROM nexmark
      WHERE person IS NOT NULL AND person.state IN ('OR', 'ID', 'CA')) p
ON a.seller = p.id;`,
  },
  q11: {
    title: "session windows: bids per bidder (10 ms gap)",
    sql: `INSERT INTO sink SELECT bidder, session(INTERVAL '10' MILLISECOND) AS window, count(*) AS bid_count
FROM (SELECT bid.bidder AS bidder FROM nexmark WHERE bid IS NOT NULL)
GROUP BY bidder, window;`,
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
  writeFileSync(file, SOURCE(events) + QUERIES[query]!.sql);
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
