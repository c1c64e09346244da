/**
 * Jobs across worker processes, as a user runs them: the output equals one
 * process's; kill -9 of a worker at any moment, or a worker that stops
 * answering (SIGSTOP), restores the whole job from its last checkpoint with
 * every row once; a slow sink holds the source back across processes with
 * memory bounded; workers on other addresses (as other hosts) register with an
 * external scheduler and one killed is replaced by another.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI, freePort, REPO, runCli, startCli, startJob, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";
import { AGGREGATES, results } from "./aggregates.ts";
import { killWorkersAtRandom, manifests, seeded } from "./kill-worker.ts";

setDefaultTimeout(180_000);

const children = (pid: number): number[] => {
  const r = Bun.spawnSync(["pgrep", "-P", String(pid)]);
  return new TextDecoder().decode(r.stdout).split("\n").filter(Boolean).map(Number);
};
const spawned: ReturnType<typeof Bun.spawn>[] = [];
afterAll(() => {
  for (const p of spawned) p.kill("SIGKILL");
});

describe("jobs across worker processes", () => {
  test("three workers give what one process gives", async () => {
    const one = tempDir("runnel-cluster-one-");
    const three = tempDir("runnel-cluster-three-");
    const a = await runCli(["run", writeSql(one, AGGREGATES(one, 6000, 0)), "--parallelism", "3", "--workers", "1", "--quiet"]);
    expect(a.code).toBe(0);
    const b = await runCli(["run", writeSql(three, AGGREGATES(three, 6000, 0)), "--parallelism", "3", "--workers", "3", "--quiet"]);
    expect(b.stderr).toContain("3 worker processes");
    expect(b.code).toBe(0);
    expect(results(three)).toEqual(results(one));
    expect(results(one).totals.length).toBe(13);
  });

  test("workers' generator sources share the job's start: without base_time, event times interleave as one stream", async () => {
    // Each worker's source took its own clock as the base, tens of milliseconds apart, and its events' times
    // shifted against the other worker's (Nexmark q11 at parallelism 2 split sessions: 135,704 for 73,814).
    const dir = tempDir("runnel-cluster-start-");
    const out = join(dir, "out.jsonl");
    const events = 20_000;
    const sql = `CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '0', message_count = '${events}');
CREATE TABLE results WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO results SELECT person.datetime AS p, auction.datetime AS a, bid.datetime AS b FROM nexmark;`;
    const r = await runCli(["run", writeSql(dir, sql), "--parallelism", "2", "--workers", "2", "--quiet"]);
    expect(r.stderr).toContain("2 worker processes");
    expect(r.code).toBe(0);
    // Timestamps are written with microseconds; read them back as µs since the epoch.
    const micros = (iso: string) => Date.parse(iso.slice(0, 19) + "Z") * 1000 + Number((iso.slice(20, -1) + "000000").slice(0, 6));
    const times = readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((line) => {
        const row = JSON.parse(line) as Record<string, string | null>;
        return micros((row.p ?? row.a ?? row.b)!);
      })
      .sort((x, y) => x - y);
    // event_rate 0 spaces events 1 µs apart: one base for all of them, or two shifted against each other.
    expect(times.map((t) => t - times[0]!)).toEqual(Array.from({ length: events }, (_, n) => n));
  });

  test("kill -9 of a worker at random moments: restored from the last checkpoint, every row once", async () => {
    const ref = tempDir("runnel-cluster-ref-");
    expect((await runCli(["run", writeSql(ref, AGGREGATES(ref, 9000, 3000)), "--parallelism", "3", "--workers", "1", "--quiet"])).code).toBe(0);
    const dir = tempDir("runnel-cluster-kill-");
    const job = startJob([writeSql(dir, AGGREGATES(dir, 9000, 3000)), "--parallelism", "3", "--workers", "3", "--state-dir", join(dir, "state"), "--checkpoint-interval", "200ms", "--quiet"]);
    // Each kill waits for the workers of the attempt it kills (fixed sleeps missed them on a loaded machine).
    const killed = await killWorkersAtRandom({ job, stateDir: join(dir, "state"), workers: 3, kills: 3, random: seeded(11) });
    expect(await job.proc.exited).toBe(0);
    expect(killed.length).toBeGreaterThan(0);
    // A kill that lands as the job ends (its workers already leaving) needs no restore; every other one does.
    const restores = job.stderr().match(/restoring the job from its last checkpoint/g)?.length ?? 0;
    expect(restores).toBeGreaterThanOrEqual(Math.min(1, killed.length));
    expect(restores).toBeLessThanOrEqual(killed.length);
    expect(results(dir)).toEqual(results(ref));
  });

  test("a worker that stops answering (SIGSTOP) is found out within seconds and the job restored", async () => {
    const ref = tempDir("runnel-cluster-stop-ref-");
    expect((await runCli(["run", writeSql(ref, AGGREGATES(ref, 6000, 2000)), "--parallelism", "2", "--workers", "1", "--quiet"])).code).toBe(0);
    const dir = tempDir("runnel-cluster-stop-");
    const proc = startCli(["run", writeSql(dir, AGGREGATES(dir, 6000, 2000)), "--parallelism", "2", "--workers", "2", "--state-dir", join(dir, "state"), "--checkpoint-interval", "200ms", "--quiet"]);
    const err = new Response(proc.stderr as ReadableStream).text();
    void new Response(proc.stdout as ReadableStream).text();
    await waitUntil("a first checkpoint", () => existsSync(join(dir, "state", "checkpoints")) && readdirSync(join(dir, "state", "checkpoints")).length > 0, 30_000, 50);
    const stopped = children(proc.pid)[0]!;
    process.kill(stopped, "SIGSTOP");
    const started = performance.now();
    expect(await proc.exited).toBe(0);
    const stderr = await err;
    expect(stderr).toMatch(/stopped answering for \d+ s; restoring the job/);
    expect(performance.now() - started).toBeLessThan(60_000);
    expect(results(dir)).toEqual(results(ref));
  });

  test("backpressure crosses processes: a slow sink holds the source back, memory stays bounded", async () => {
    const project = tempDir("runnel-cluster-slow-");
    writeFileSync(
      join(project, "slow.ts"),
      `export default { name: "slow-sink", connectors: [{ name: "slow", options: {}, sink: { maxParallelism: 1, create() {
        return { async write(batch) { await new Promise((r) => setTimeout(r, 20)); } };
      } } }] };`,
    );
    writeFileSync(join(project, "runnel.config.ts"), `export default { plugins: ["./slow.ts"] };\n`);
    const sql = writeSql(project, `
CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '0', message_count = '50000000');
CREATE TABLE out WITH (connector = 'slow', type = 'sink');
INSERT INTO out SELECT counter, subtask_index FROM impulse WHERE counter % 2 = 0;`);
    const proc = Bun.spawn(["bun", CLI, "run", sql, "--parallelism", "2", "--workers", "2", "--checkpoint-interval", "1s"], { cwd: project, stdout: "pipe", stderr: "pipe" });
    spawned.push(proc);
    let stderr = "";
    void (async () => {
      const dec = new TextDecoder();
      const reader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
      for (let r = await reader.read(); !r.done; r = await reader.read()) stderr += dec.decode(r.value);
    })();
    // Three progress lines (2 s apart) after the sink got its first rows: long enough for an unthrottled
    // source to run far ahead, were it not held back — however slowly a loaded machine starts the job.
    const flowing = () => [...stderr.matchAll(/0-source in=(\d+) out=\d+.*?sink in=(\d+)/g)].filter((m) => Number(m[2]) > 0);
    await waitUntil("three progress reports with rows at the sink", () => flowing().length >= 3, 90_000);
    const progress = flowing().at(-1);
    const rss = children(proc.pid).map((pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024);
    proc.kill("SIGKILL");
    for (const pid of children(proc.pid)) process.kill(pid, "SIGKILL");
    expect(progress).toBeDefined();
    const [sourced, sunk] = [Number(progress![1]), Number(progress![2])];
    // Unthrottled, the generator makes millions of rows in 6 s; held back, what is in flight is channels' worth.
    expect(sunk).toBeGreaterThan(0);
    expect(sourced - 2 * sunk).toBeLessThan(2 * 16 * 3 * 4096);
    expect(Math.max(...rss)).toBeLessThan(400);
  });

  test("workers on other addresses register with an external scheduler; one killed is replaced by another", async () => {
    const dir = tempDir("runnel-cluster-external-");
    const ref = tempDir("runnel-cluster-external-ref-");
    expect((await runCli(["run", writeSql(ref, AGGREGATES(ref, 8000, 2500)), "--parallelism", "2", "--workers", "1", "--quiet"])).code).toBe(0);
    const port = await freePort();
    const manager = `127.0.0.1:${port}`;
    const proc = startCli(["run", writeSql(dir, AGGREGATES(dir, 8000, 2500)), "--parallelism", "2", "--scheduler", "external", "--workers", "2", "--listen", manager, "--secret", "cluster-test", "--state-dir", join(dir, "state"), "--checkpoint-interval", "200ms", "--quiet"]);
    const err = new Response(proc.stderr as ReadableStream).text();
    void new Response(proc.stdout as ReadableStream).text();
    const worker = (host: string) => {
      const w = Bun.spawn(["bun", CLI, "worker", "--manager", manager, "--secret", "cluster-test", "--listen", `${host}:0`], { cwd: REPO, stdout: "ignore", stderr: "ignore" });
      spawned.push(w);
      return w;
    };
    // A worker without the secret is refused and changes nothing.
    const intruder = Bun.spawn(["bun", CLI, "worker", "--manager", manager, "--secret", "wrong", "--listen", "127.0.0.9:0", "--once"], { cwd: REPO, stdout: "ignore", stderr: "pipe" });
    worker("127.0.0.2");
    const second = worker("127.0.0.3");
    // Both workers registered and running (a fixed sleep raced their start on a loaded machine).
    await waitUntil("a first checkpoint", () => manifests(join(dir, "state")).size > 0, 60_000, 50);
    second.kill("SIGKILL");
    worker("127.0.0.4");
    expect(await proc.exited).toBe(0);
    const stderr = await err;
    expect(stderr).toContain("restoring the job from its last checkpoint");
    expect(results(dir)).toEqual(results(ref));
    expect(await intruder.exited).not.toBe(0);
  });
});
