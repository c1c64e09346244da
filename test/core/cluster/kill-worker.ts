/**
 * Kills one worker process of a running `runnel run --workers N` job (never the
 * job manager) at random moments: the worker processes are the CLI process's
 * children running core/cluster/worker-main.ts. Each kill waits for the
 * generation of workers the previous restore started and for a checkpoint of
 * theirs (so the kill lands while records flow, not during start-up), so every
 * kill hits a different running attempt of the job and is answered by one restore.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { eventually, waitUntil, type RunningJob } from "../../kit/cli.ts";

/** The worker processes a CLI process started (its children running worker-main). */
export function workerPids(cliPid: number): number[] {
  const r = Bun.spawnSync(["pgrep", "-P", String(cliPid)]);
  return new TextDecoder()
    .decode(r.stdout)
    .split("\n")
    .filter(Boolean)
    .map(Number)
    .filter((pid) => existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("worker-main"));
}

/** A seeded generator, so a failing run can be replayed. */
export function seeded(seed: number): () => number {
  return () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
}

/** Names of the checkpoint manifests in a local state directory. */
export function manifests(stateDir: string): Set<string> {
  if (!existsSync(stateDir)) return new Set();
  return new Set(readdirSync(stateDir, { recursive: true }).map((f) => basename(String(f))).filter((f) => /^chk-\d+.*\.json$/.test(f)));
}

export interface WorkerKills {
  job: RunningJob;
  /** The job's --state-dir: each kill waits for a checkpoint of the attempt it kills. */
  stateDir: string;
  workers: number;
  kills: number;
  random: () => number;
  /** Random wait after a generation's first checkpoint, before the kill (default 0 to 1000 ms). */
  minDelayMs?: number;
  maxDelayMs?: number;
  log?: (line: string) => void;
}

/** Kills one worker per attempt, `kills` times; returns the pids killed (fewer if the job ended first). */
export async function killWorkersAtRandom(o: WorkerKills): Promise<number[]> {
  const seen = new Set<number>();
  const killed: number[] = [];
  const [min, max] = [o.minDelayMs ?? 0, o.maxDelayMs ?? 1000];
  for (let k = 0; k < o.kills; k++) {
    // The next attempt's workers: all of them up, none of an earlier attempt.
    const generation = await eventually(`worker generation ${k + 1} (${o.workers} new worker processes)`, () => {
      if (o.job.proc.exitCode !== null) return [];
      const pids = workerPids(o.job.proc.pid).filter((p) => !seen.has(p));
      return pids.length === o.workers ? pids : undefined;
    }, 60_000, 50);
    if (generation.length === 0) break;
    for (const p of generation) seen.add(p);
    const before = manifests(o.stateDir);
    await waitUntil(`a checkpoint of worker generation ${k + 1}`, () => [...manifests(o.stateDir)].some((m) => !before.has(m)) || o.job.proc.exitCode !== null, 60_000, 50);
    await Bun.sleep(min + Math.floor(o.random() * (max - min)));
    if (o.job.proc.exitCode !== null) break;
    const victim = generation[Math.floor(o.random() * generation.length)]!;
    try {
      process.kill(victim, "SIGKILL");
    } catch {
      break; // it had already ended: the job is finishing
    }
    killed.push(victim);
    o.log?.(`kill ${k + 1}: worker pid ${victim}`);
    await waitUntil(`restore ${killed.length} after killing worker ${victim}`, () => o.job.stderr().includes(`(restore ${killed.length} of at most`) || o.job.proc.exitCode !== null, 60_000, 50);
  }
  return killed;
}
