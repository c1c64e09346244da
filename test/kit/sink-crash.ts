/**
 * The at-least-once sink check under kill -9, shared by the message-system
 * sinks: an impulse counter (an exactly-once, replayable source) feeds the
 * sink at a steady rate while the job is killed at random moments and
 * restarted from its checkpoints; a last run drains to the end. Every counter
 * value must then be in the target at least once (duplicates are allowed and
 * counted).
 */
import { join } from "node:path";
import { startCli, tempDir, waitUntil, writeSql } from "./cli.ts";

export interface SinkCrashOptions {
  /** The sink table's WITH options after `connector = ...` (format included); its columns are (id BIGINT, v TEXT). */
  sinkOptions: string;
  /** Every id found in the target so far (duplicates included). */
  readIds: () => Promise<number[]>;
  kills?: number;
  rate?: number;
  count?: number;
  seed?: number;
}

export interface SinkCrashReport {
  count: number;
  missing: number[];
  duplicates: number;
  kills: number;
}

export async function sinkUnderKills(o: SinkCrashOptions): Promise<SinkCrashReport> {
  const count = o.count ?? 3000;
  // The input lasts 5 s of processing: more than the kills can leave (each run is killed within 1.2 s of
  // its start), so every kill lands while the job still runs however fast it starts.
  const rate = o.rate ?? Math.ceil(count / 5);
  const kills = o.kills ?? 3;
  let seed = o.seed ?? 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const dir = tempDir("runnel-sink-crash-");
  const sql = writeSql(
    dir,
    `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '${rate}', message_count = '${count}');
CREATE TABLE out (id BIGINT, v TEXT) WITH (${o.sinkOptions}, type = 'sink');
INSERT INTO out SELECT CAST(counter AS BIGINT) AS id, CONCAT('v', CAST(counter AS TEXT)) AS v FROM imp;`,
  );
  const args = ["run", sql, "--state-dir", join(dir, "state"), "--checkpoint-interval", "200ms", "--parallelism", "1", "--quiet"];
  for (let i = 0; i < kills; i++) {
    const proc = startCli(args);
    await Bun.sleep(500 + Math.floor(random() * 700));
    const alive = proc.exitCode === null;
    proc.kill("SIGKILL");
    await proc.exited;
    if (!alive) throw new Error(`run ${i} ended by itself (${proc.exitCode}) before its kill: ${await new Response(proc.stderr).text()}`);
  }
  const last = startCli(args);
  const [code, stderr] = await Promise.all([last.exited, new Response(last.stderr).text()]);
  if (code !== 0) throw new Error(`the last run exited with ${code}: ${stderr}`);
  let ids: number[] = [];
  await waitUntil("every id in the target", async () => {
    ids = await o.readIds();
    return new Set(ids).size >= count;
  }, 20_000, 200).catch(() => {});
  const seen = new Set(ids);
  const missing: number[] = [];
  for (let i = 0; i < count && missing.length < 20; i++) if (!seen.has(i)) missing.push(i);
  return { count, missing, duplicates: ids.length - seen.size, kills };
}
