/**
 * Exactly-once across crashes for joins: an event-history join and a window
 * join, each written to a single_file sink, killed with SIGKILL at random
 * moments and rerun with the same state dir, produce exactly the rows of an
 * uninterrupted run. The two inputs run at different rates, so rows of one side
 * wait in checkpointed join state for the other.
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { collectText, runCli, startCli, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";

// These tests run real processes; each file sets its own limit so it also runs alone.
setDefaultTimeout(240_000);

function pipeline(dir: string, prefix: string, messages: number) {
  const source = (name: string, rate: number, interval: string) => `
CREATE TABLE ${name} WITH (
  connector = 'impulse', event_rate = '${rate}', message_count = '${messages}',
  event_time_interval = '${interval}', start_time = '2024-01-01T00:00:00Z'
);`;
  return `
${source("fast", 4000, "10ms")}
${source("slow", 1500, "20ms")}
CREATE TABLE history WITH (connector = 'single_file', path = '${join(dir, `${prefix}-history.jsonl`)}', format = 'json', type = 'sink');
CREATE TABLE windows WITH (connector = 'single_file', path = '${join(dir, `${prefix}-windows.jsonl`)}', format = 'json', type = 'sink');
INSERT INTO history
SELECT f.subtask_index, f.counter, s.counter AS slow_counter
FROM fast f JOIN slow s ON f.subtask_index = s.subtask_index AND f.counter = s.counter * 2;
INSERT INTO windows
SELECT f.window, f.subtask_index, f.n, s.n AS slow_n, s.top
FROM (SELECT tumble(INTERVAL '1' SECOND) AS window, subtask_index, counter % 3 AS bucket, count(*) AS n FROM fast GROUP BY window, subtask_index, bucket) f
LEFT JOIN (SELECT tumble(INTERVAL '1' SECOND) AS window, subtask_index, counter % 2 AS bucket, count(*) AS n, max(counter) AS top FROM slow GROUP BY window, subtask_index, bucket) s
ON f.subtask_index = s.subtask_index AND f.bucket = s.bucket;
`;
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);

function killDelays(seed: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    out.push(300 + (seed % 1800));
  }
  return out;
}

describe("joins: kill -9 and restore", () => {
  for (const parallelism of [1, 2]) {
    test(`an event-history join and a window join after 4 crashes equal an uninterrupted run (parallelism ${parallelism})`, async () => {
      const dir = tempDir("runnel-join-crash-");
      const messages = 4000;
      const args = (file: string) => ["run", file, "--parallelism", String(parallelism), "--quiet"];
      const ref = await runCli(args(writeSql(dir, pipeline(dir, "ref", messages), "ref.sql")));
      expect(ref.code).toBe(0);
      const expectedHistory = lines(join(dir, "ref-history.jsonl"));
      const expectedWindows = lines(join(dir, "ref-windows.jsonl"));
      // Fast counters 0, 2, …, 3998 each meet one slow counter, per subtask.
      expect(expectedHistory.length).toBe(2000 * parallelism);
      expect(expectedWindows.length).toBeGreaterThan(100);
      expect(expectedWindows.some((l) => l.includes('"slow_n":null'))).toBe(true);

      const sqlFile = writeSql(dir, pipeline(dir, "crash", messages), "crash.sql");
      const stateArgs = [...args(sqlFile), "--state-dir", join(dir, "state"), "--checkpoint-interval", "200ms"];
      for (const delay of killDelays(3 + parallelism, 4)) {
        const proc = startCli(stateArgs);
        await Bun.sleep(delay);
        proc.kill("SIGKILL");
        await proc.exited;
      }
      const final = await runCli(stateArgs);
      expect(final.stderr).not.toContain("error");
      expect(final.code).toBe(0);
      expect([...lines(join(dir, "crash-history.jsonl"))].sort()).toEqual([...expectedHistory].sort());
      expect([...lines(join(dir, "crash-windows.jsonl"))].sort()).toEqual([...expectedWindows].sort());
    });
  }

  test("restored at another parallelism, join state moves with its keys", async () => {
    const dir = tempDir("runnel-join-rescale-");
    const messages = 4000;
    const ref = await runCli(["run", writeSql(dir, pipeline(dir, "ref", messages), "ref.sql"), "--parallelism", "2", "--quiet"]);
    expect(ref.code).toBe(0);
    const sqlFile = writeSql(dir, pipeline(dir, "crash", messages), "crash.sql");
    const stateDir = join(dir, "state");
    const proc = startCli(["run", sqlFile, "--parallelism", "2", "--state-dir", stateDir, "--checkpoint-interval", "10s", "--quiet"]);
    // Mid-run: a while after it printed its graph (then it handles SIGTERM), however slow its start.
    const stderr = collectText(proc.stderr as ReadableStream<Uint8Array>);
    await waitUntil("the job to start", () => stderr().includes("dataflow graph"));
    await Bun.sleep(1200);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    const resumed = await runCli(["run", sqlFile, "--parallelism", "1", "--state-dir", stateDir, "--quiet"]);
    expect(resumed.code).toBe(0);
    expect([...lines(join(dir, "crash-history.jsonl"))].sort()).toEqual([...lines(join(dir, "ref-history.jsonl"))].sort());
    expect([...lines(join(dir, "crash-windows.jsonl"))].sort()).toEqual([...lines(join(dir, "ref-windows.jsonl"))].sort());
  });
});
