/**
 * FileSystem sink benchmark: Nexmark bids (7 columns) → Parquet zstd, on local
 * disk and on the S3 emulator (moto, scripts/services.sh start moto), each
 * pipeline in its own process (bench/run-one.ts: CPU seconds, peak RSS).
 *
 * rows/s per core = bids ÷ CPU seconds of the process (user + system). The
 * same query into a blackhole sink is run too, so the sink's own cost per row
 * is the difference of the two. The emulator's CPU is not counted (it is
 * another process), but it shares the machine.
 *
 *   bun run bench:filesystem                 default 5M events
 *   bun run bench:filesystem --events 2000000
 */
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";

const S3 = process.env.RUNNEL_TEST_S3 ?? "http://127.0.0.1:15000";

export const sql = (events: number, sinkWith: string) => `
CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '0', message_count = '${events}');
CREATE TABLE out (time TIMESTAMP, auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, extra TEXT) WITH (${sinkWith});
INSERT INTO out SELECT bid.datetime AS time, bid.auction, bid.bidder, bid.price, bid.channel, bid.url, bid.extra
FROM nexmark WHERE bid IS NOT NULL;
`;

export interface Stats {
  cpuSeconds: number;
  peakRssMb: number;
  sinkRecords: number;
  wallSeconds: number;
}

export async function runOne(text: string): Promise<Stats> {
  const dir = mkdtempSync(join(tmpdir(), "runnel-bench-fs-"));
  const file = join(dir, "pipeline.sql");
  writeFileSync(file, text);
  const started = performance.now();
  const proc = Bun.spawn(["bun", "bench/run-one.ts", file], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  const code = await proc.exited;
  rmSync(dir, { recursive: true, force: true });
  if (code !== 0) throw new Error(`pipeline failed with exit code ${code}`);
  return { ...JSON.parse(out.trim().split("\n").pop()!), wallSeconds: (performance.now() - started) / 1000 };
}

export function localSizes(dir: string): number[] {
  const out: number[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else out.push(s.size);
    }
  };
  walk(dir);
  return out;
}

export async function s3Sizes(client: S3Client, bucket: string): Promise<number[]> {
  const r = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (r.Contents ?? []).map((o) => o.Size ?? 0);
}

const mb = (n: number) => (n / 1024 / 1024).toFixed(1);

if (import.meta.main) {
  const args = process.argv.slice(2);
  let events = 5_000_000;
  for (let i = 0; i < args.length; i++) if (args[i] === "--events") events = Number(args[++i]);

  const rows: string[] = [];
  const base = await runOne(sql(events, "connector = 'blackhole'"));
  const line = (what: string, s: Stats, files: number[]) => {
    const perCore = s.sinkRecords / s.cpuSeconds;
    const sinkCpu = s.cpuSeconds - base.cpuSeconds;
    const sinkPerCore = sinkCpu > 0 ? Math.round(s.sinkRecords / sinkCpu).toLocaleString("en") : "-";
    const size = files.length ? `${files.length} × ${mb(files.reduce((a, b) => a + b, 0) / files.length)} MB (${(files.reduce((a, b) => a + b, 0) / s.sinkRecords).toFixed(1)} B/row)` : "-";
    rows.push(
      `| ${what} | ${s.sinkRecords.toLocaleString("en")} | ${Math.round(perCore).toLocaleString("en")} | ${sinkPerCore} | ${s.wallSeconds.toFixed(1)} | ${s.peakRssMb.toFixed(0)} | ${size} |`,
    );
  };
  line("blackhole (baseline: generator + projection)", base, []);

  const dir = mkdtempSync(join(tmpdir(), "runnel-bench-fs-out-"));
  const local = await runOne(sql(events, `connector = 'filesystem', path = '${dir}', format = 'parquet', 'parquet.compression' = 'zstd'`));
  line("filesystem → local Parquet zstd", local, localSizes(dir));
  rmSync(dir, { recursive: true, force: true });

  const client = new S3Client({ endpoint: S3, forcePathStyle: true, region: "us-east-1", credentials: { accessKeyId: "bench", secretAccessKey: "bench" } });
  const bucket = `runnel-bench-${Date.now().toString(36)}`;
  const reachable = await client.send(new CreateBucketCommand({ Bucket: bucket })).then(() => true, () => false);
  if (reachable) {
    const s3 = await runOne(
      sql(events, `connector = 'filesystem', path = 's3://${bucket}/bids', format = 'parquet', 'parquet.compression' = 'zstd',
        'storage.aws_endpoint' = '${S3}', 'storage.aws_access_key_id' = 'bench', 'storage.aws_secret_access_key' = 'bench'`),
    );
    line("filesystem → S3 emulator Parquet zstd", s3, await s3Sizes(client, bucket));
  } else {
    rows.push(`| S3: no emulator at ${S3} (scripts/services.sh start moto) | | | | | | |`);
  }

  console.log(`${events.toLocaleString("en")} Nexmark events, parallelism 1, checkpoint every 10 s\n`);
  console.log("| pipeline | bids | rows/s per core (whole process) | rows/s per core (sink alone) | wall s | peak RSS MB | files |");
  console.log("|---|---:|---:|---:|---:|---:|---|");
  for (const r of rows) console.log(r);
}
