/**
 * Fencing: a run of a job replaced by a newer one (it was paused, or its
 * control plane lost its lease) can no longer write a checkpoint, commit or
 * delete state; a manifest it slipped in after the newer run restored is
 * ignored; and a run woken from SIGSTOP after another run finished the job
 * stops on its own without adding a row.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Fence, FencedError } from "../../../core/checkpoint/fence.ts";
import { CHECKPOINT_FORMAT, CHECKPOINT_VERSION, LocalCheckpointStore, type CheckpointData } from "../../../core/checkpoint/store.ts";
import { runCli, startCli, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";

setDefaultTimeout(120_000);

const manifest = (checkpointId: number, epoch: number): CheckpointData => ({
  format: CHECKPOINT_FORMAT,
  version: CHECKPOINT_VERSION,
  pipeline: "p",
  labels: {},
  checkpointId,
  epoch,
  createdAt: Date.now(),
  then: "continue",
  maxParallelism: 128,
  operators: {},
});

const spawned: ReturnType<typeof startCli>[] = [];
afterAll(() => {
  for (const p of spawned) p.kill("SIGKILL");
});

describe("fencing", () => {
  test("a newer run's claim fences the older one out", async () => {
    const store = new LocalCheckpointStore(tempDir("runnel-fence-"));
    const older = await Fence.claim(store);
    await older.restoring(null);
    await older.check("writing");
    const newer = await Fence.claim(store);
    expect(newer.epoch).toBeGreaterThan(older.epoch);
    await newer.restoring(null);
    await newer.check("writing");
    const refused = await older.check("writing checkpoint 7").catch((e) => e);
    expect(refused).toBeInstanceOf(FencedError);
    expect(refused.message).toContain("writing checkpoint 7 refused");
    expect(refused.message).toContain(`(epoch ${newer.epoch}) took over`);
  });

  test("a manifest the older run slips in after the newer run restored is never restored", async () => {
    const store = new LocalCheckpointStore(tempDir("runnel-fence-"));
    const older = await Fence.claim(store);
    await older.restoring(null);
    await store.write(manifest(1, older.epoch));
    await store.write(manifest(2, older.epoch));
    const newer = await Fence.claim(store);
    expect((await store.latest())?.checkpointId).toBe(2);
    await newer.restoring(2);
    // The older run had passed its check just before the takeover and writes now.
    await store.write(manifest(3, older.epoch));
    expect((await store.latest())?.checkpointId).toBe(2);
    expect((await store.retained()).map((c) => c.checkpointId)).toEqual([1, 2]);
    // The newer run's own checkpoint 3 does not overwrite or get overwritten by the older one's.
    await store.write(manifest(3, newer.epoch));
    const latest = await store.latest();
    expect([latest?.checkpointId, latest?.epoch]).toEqual([3, newer.epoch]);
    // The superseded manifest was pruned.
    expect(readdirSync(store.dir).filter((f) => f.includes(`-${older.epoch}.json`)).map((f) => f.slice(0, 14)).sort()).toEqual(["chk-0000000001", "chk-0000000002"]);
  });

  test("a run woken from SIGSTOP after another run finished the job stops without writing; every row once", async () => {
    const dir = tempDir("runnel-fence-cli-");
    const out = join(dir, "out");
    const events = 6000;
    const sql = writeSql(
      dir,
      `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '1500', message_count = '${events}');
CREATE TABLE out WITH (connector = 'filesystem', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out SELECT counter FROM impulse;`,
    );
    const args = ["run", sql, "--state-dir", join(dir, "state"), "--checkpoint-interval", "300ms"];
    const older = startCli(args);
    spawned.push(older);
    const olderErr = new Response(older.stderr as ReadableStream).text();
    void new Response(older.stdout as ReadableStream).text();
    await waitUntil("two checkpoints", () => existsSync(join(dir, "state", "checkpoints")) && readdirSync(join(dir, "state", "checkpoints")).filter((f) => f.endsWith(".json")).length >= 2, 30_000, 20);
    older.kill("SIGSTOP");
    // Another run of the job takes over from the last checkpoint and finishes it.
    const newer = await runCli(args);
    expect(newer.code).toBe(0);
    expect(newer.stderr).toMatch(/restored from checkpoint \d+|from checkpoint \d+/);
    older.kill("SIGCONT");
    const code = await Promise.race([older.exited, Bun.sleep(20_000).then(() => "still running")]);
    expect(code).not.toBe("still running");
    expect(code).not.toBe(0);
    expect(await olderErr).toContain("a newer run of this job");
    await Bun.sleep(500);
    const counters = readdirSync(out)
      .filter((f) => !f.startsWith("."))
      .flatMap((f) => readFileSync(join(out, f), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).counter as number));
    expect(counters.length).toBe(events);
    expect(new Set(counters).size).toBe(events);
  });
});
