/**
 * The source side of the kill -9 tests: messages keep arriving (published
 * by `publish`) while a job reading them is started and killed a few times,
 * each time after its output has grown.
 */
import { existsSync, readFileSync } from "node:fs";
import type { RunningJob } from "./cli.ts";
import { waitUntil } from "./cli.ts";

export const outputLines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);

export interface KillRounds {
  start: () => RunningJob;
  /** The job's output file (JSON lines). */
  out: string;
  /** Publishes messages with ids [from, from + n). */
  publish: (from: number, n: number) => Promise<void>;
  /** Messages published at most (default 20,000), in steps of 50 every 20 ms, until the last kill. */
  limit?: number;
  rounds?: number;
  /** Output growth to wait for before each kill. */
  growth?: number;
}

/** Runs the kill rounds while publishing; returns how many messages were published (ids 0 to n-1). */
export async function killWhilePublishing(o: KillRounds): Promise<number> {
  let next = 0;
  let producing = true;
  const producer = (async () => {
    while (producing && next < (o.limit ?? 20_000)) {
      await o.publish(next, 50);
      next += 50;
      await Bun.sleep(20);
    }
  })();
  for (let round = 0; round < (o.rounds ?? 3); round++) {
    const job = o.start();
    const before = outputLines(o.out).length;
    await waitUntil(`output to grow in round ${round}`, () => outputLines(o.out).length > before + (o.growth ?? 150));
    await Bun.sleep(100 + round * 150);
    await job.kill();
  }
  producing = false;
  await producer;
  return next;
}
