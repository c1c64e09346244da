/**
 * Shared by the generator sources' rescale tests: runs a pipeline with a
 * single_file sink at each parallelism in turn, stopping all runs but the
 * last with SIGTERM mid-run, and returns the sink's lines.
 */
import { expect } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startCli, tempDir, waitUntil, writeSql } from "../kit/cli.ts";

export const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);

/**
 * `pipeline(out)` is the SQL writing to the single_file `out`; `total` bounds what a stopped run may have written.
 * A stopped run is stopped `stopAfterMs` after its first rows reach the file (not after its start, which a loaded machine delays).
 */
export async function stoppedAndResumed(pipeline: (out: string) => string, parallelisms: number[], stopAfterMs: number, total: number) {
  const dir = tempDir("runnel-rescale-");
  const out = join(dir, "out.jsonl");
  const sql = writeSql(dir, pipeline(out));
  const args = (p: number) => ["run", sql, "--state-dir", join(dir, "state"), "--checkpoint-interval", "500ms", "--parallelism", String(p), "--quiet"];
  for (const p of parallelisms.slice(0, -1)) {
    const before = lines(out).length;
    const proc = startCli(args(p));
    await waitUntil("the run's first rows", () => lines(out).length > before);
    await Bun.sleep(stopAfterMs);
    proc.kill("SIGTERM");
    const stderr = await new Response(proc.stderr).text();
    expect(await proc.exited).toBe(0);
    expect(stderr).toContain("stopped at checkpoint");
    // The stop landed mid-run: this run wrote some of the rows, not all.
    expect(lines(out).length).toBeGreaterThan(before);
    expect(lines(out).length).toBeLessThan(total);
  }
  const last = await runCli(args(parallelisms.at(-1)!));
  expect(last.stderr).not.toContain("error");
  expect(last.code).toBe(0);
  return lines(out);
}
