/**
 * Exactly-once across crashes: a windowed aggregate written to a single_file
 * sink, killed with SIGKILL at random moments and rerun with the same state
 * dir, produces exactly the output of an uninterrupted run.
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { collectText, runCli, startCli, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";

// These tests run real processes; each file sets its own limit so it also runs alone.
setDefaultTimeout(180_000);

function pipeline(out: string, messages: number) {
  return `
CREATE TABLE impulse WITH (
  connector = 'impulse',
  event_rate = '4000',
  message_count = '${messages}',
  event_time_interval = '10ms',
  start_time = '2024-01-01T00:00:00Z'
);
CREATE TABLE results WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO results
SELECT tumble(INTERVAL '1' SECOND) AS window, subtask_index, count(*) AS n, sum(counter) AS total, max(counter) AS top
FROM impulse
GROUP BY window, subtask_index;
`;
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);

/** Deterministic kill moments so a failure can be replayed, spread over a run's lifetime. */
function killDelays(seed: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    out.push(250 + (seed % 1700));
  }
  return out;
}

async function crashingRun(sqlFile: string, stateDir: string, parallelism: number, delays: number[]) {
  for (const delay of delays) {
    const proc = startCli(["run", sqlFile, "--state-dir", stateDir, "--checkpoint-interval", "200ms", "--parallelism", String(parallelism), "--quiet"]);
    await Bun.sleep(delay);
    proc.kill("SIGKILL");
    await proc.exited;
  }
  const final = await runCli(["run", sqlFile, "--state-dir", stateDir, "--checkpoint-interval", "200ms", "--parallelism", String(parallelism), "--quiet"]);
  expect(final.stderr).not.toContain("error");
  expect(final.code).toBe(0);
}

describe("kill -9 and restore", () => {
  for (const parallelism of [1, 2]) {
    test(`output after ${parallelism === 1 ? 5 : 4} crashes equals an uninterrupted run (parallelism ${parallelism})`, async () => {
      const dir = tempDir("runnel-crash-");
      const messages = 6000;
      const refOut = join(dir, "reference.jsonl");
      const ref = await runCli(["run", writeSql(dir, pipeline(refOut, messages), "ref.sql"), "--parallelism", String(parallelism), "--quiet"]);
      expect(ref.code).toBe(0);
      const expected = lines(refOut);
      // 6000 events 10 ms apart per subtask: 60 one-second windows per subtask.
      expect(expected.length).toBe(60 * parallelism);

      const crashOut = join(dir, "crashed.jsonl");
      await crashingRun(
        writeSql(dir, pipeline(crashOut, messages), "crash.sql"),
        join(dir, "state"),
        parallelism,
        killDelays(7 + parallelism, parallelism === 1 ? 5 : 4),
      );
      const got = lines(crashOut);
      if (parallelism === 1) expect(got).toEqual(expected);
      else expect([...got].sort()).toEqual([...expected].sort());
    });
  }

  test("killed after a checkpoint completes but before the sink commits: the restore commits it once", async () => {
    const dir = tempDir("runnel-crashpoint-");
    const refOut = join(dir, "reference.jsonl");
    expect((await runCli(["run", writeSql(dir, pipeline(refOut, 3000), "ref.sql"), "--quiet"])).code).toBe(0);
    const out = join(dir, "out.jsonl");
    const sqlFile = writeSql(dir, pipeline(out, 3000), "crash.sql");
    const args = ["run", sqlFile, "--state-dir", join(dir, "state"), "--checkpoint-interval", "200ms", "--quiet"];
    const crashed = startCli(args, undefined, { RUNNEL_CRASH_AT: "sink-before-commit:3" });
    expect(await crashed.exited).not.toBe(0);
    expect(crashed.signalCode).toBe("SIGKILL");
    const committedBefore = lines(out).length;
    const resumed = await runCli(args);
    expect(resumed.code).toBe(0);
    expect(lines(out)).toEqual(lines(refOut));
    expect(committedBefore).toBeLessThan(lines(refOut).length);
  });

  test("SIGTERM takes a final checkpoint; the same command resumes without loss or duplicates", async () => {
    const dir = tempDir("runnel-stop-");
    const out = join(dir, "out.jsonl");
    const sqlFile = writeSql(dir, pipeline(out, 8000));
    const stateDir = join(dir, "state");
    const proc = startCli(["run", sqlFile, "--state-dir", stateDir, "--checkpoint-interval", "10s", "--quiet"]);
    // Mid-run: a while after it printed its graph (then it handles SIGTERM), however slow its start.
    const stderrSoFar = collectText(proc.stderr as ReadableStream<Uint8Array>);
    await waitUntil("the job to start", () => stderrSoFar().includes("dataflow graph"));
    await Bun.sleep(1200);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    // Its last words may still be in the pipe when it has exited.
    await waitUntil("the stop message", () => stderrSoFar().includes("stopped at checkpoint"), 5000);
    // The final checkpoint committed everything emitted before the stop.
    const before = lines(out).length;
    expect(before).toBeGreaterThan(0);
    const resumed = await runCli(["run", sqlFile, "--state-dir", stateDir, "--quiet"]);
    expect(resumed.code).toBe(0);
    const all = lines(out);
    expect(all.length).toBe(80);
    expect(new Set(all).size).toBe(80);
  });
});
