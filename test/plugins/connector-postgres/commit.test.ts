/**
 * The PostgreSQL sink's two-phase commit, driven by hand as the engine drives
 * it: rows are invisible until their checkpoint is committed, a commit
 * replayed after a crash applies nothing twice, and a restarted subtask
 * removes the staged rows of checkpoints that never completed but keeps (and
 * commits) the restored one's.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { SQL } from "bun";
import { field, t, type SinkWriter } from "../../../core/plugin-api/index.ts";
import { postgresConnector } from "../../../plugins/connector-postgres/index.ts";
import type { PostgresSinkState, PreparedBatch } from "../../../plugins/connector-postgres/sink.ts";
import { freshPostgresDatabase } from "../../kit/services.ts";
import { sinkContext } from "../kit.ts";

setDefaultTimeout(30_000);

let url: string;
let db: SQL;
const fields = [field("id", t.bigint()), field("name", t.string())];

beforeAll(async () => {
  url = await freshPostgresDatabase("runnel_pgcommit");
  db = new SQL(url);
});
afterAll(async () => {
  await db?.close();
});

async function writer(table: string, extra: { restored?: PostgresSinkState; subtaskIndex?: number; parallelism?: number } = {}): Promise<SinkWriter> {
  const ctx = sinkContext(postgresConnector, {
    options: { connection_string: url, table_name: table, "sink.create_table": "true" },
    fields,
    restored: extra.restored,
    subtaskIndex: extra.subtaskIndex,
    parallelism: extra.parallelism,
  });
  if (extra.restored) ctx.restoredAll = [extra.restored];
  return postgresConnector.sink!.create(ctx);
}

const rows = (from: number, count: number) => ({
  rows: Array.from({ length: count }, (_, i) => [from + i, `n${from + i}`]),
  times: Array.from({ length: count }, () => 0),
});

const count = async (table: string) => (await db.unsafe(`SELECT count(*)::int AS n FROM ${table}`))[0].n as number;
const staged = async (table: string) => (await db`SELECT count(*)::int AS n FROM runnel_sink_staging WHERE sink = ${"t:public." + table}`)[0].n as number;

describe("postgres sink commits", () => {
  test("rows appear only when their checkpoint commits; a replayed commit changes nothing", async () => {
    const w = await writer("replayed");
    await w.write(rows(0, 5000));
    const prepared = (await w.prepareCommit!(1)) as PreparedBatch;
    expect(prepared).toMatchObject({ version: 1, subtask: 0, chunks: 2, rows: 5000 });
    expect(await count("replayed")).toBe(0);
    await w.commit!(1, prepared);
    expect(await count("replayed")).toBe(5000);
    await w.commit!(1, prepared);
    expect(await count("replayed")).toBe(5000);
    // A checkpoint with no rows prepares nothing.
    expect(await w.prepareCommit!(2)).toBeNull();
    await w.close!();
    // Another writer (after a restart) replaying the same record also does nothing.
    const again = await writer("replayed", { restored: { version: 1, pending: prepared.batch } });
    await again.commit!(1, prepared);
    await again.close!();
    expect(await count("replayed")).toBe(5000);
    expect(await staged("replayed")).toBe(0);
  });

  test("a restart keeps the restored checkpoint's batch and removes later ones", async () => {
    const w = await writer("restarted");
    await w.write(rows(0, 10));
    const first = (await w.prepareCommit!(1)) as PreparedBatch;
    const state = (await w.snapshot!()) as PostgresSinkState;
    expect(state).toEqual({ version: 1, pending: first.batch });
    // Checkpoint 1 completes but the process dies before committing; rows of checkpoint 2 were staged.
    await w.write(rows(10, 10));
    await w.prepareCommit!(2);
    await w.close!();
    expect(await staged("restarted")).toBe(2);

    const restarted = await writer("restarted", { restored: state });
    expect(await staged("restarted")).toBe(1);
    await restarted.commit!(1, first);
    await restarted.close!();
    expect(await db`SELECT min(id)::int AS lo, max(id)::int AS hi, count(*)::int AS n FROM restarted`).toEqual([{ lo: 0, hi: 9, n: 10 }]);
    expect(await staged("restarted")).toBe(0);
  });

  test("a subtask removes the leftovers of the former subtasks it takes over, and only those", async () => {
    const a = await writer("owners", { subtaskIndex: 0, parallelism: 3 });
    const b = await writer("owners", { subtaskIndex: 1, parallelism: 3 });
    const c = await writer("owners", { subtaskIndex: 2, parallelism: 3 });
    for (const w of [a, b, c]) {
      await w.write(rows(0, 3));
      await w.prepareCommit!(1);
      await w.close!();
    }
    expect(await staged("owners")).toBe(3);
    // Restarted with 2 subtasks and no checkpoint: subtask 0 owns former 0 and 2, subtask 1 former 1.
    const first = await writer("owners", { subtaskIndex: 0, parallelism: 2 });
    expect((await db`SELECT subtask FROM runnel_sink_staging WHERE sink = 't:public.owners'`).map((r: { subtask: number }) => r.subtask)).toEqual([1]);
    const second = await writer("owners", { subtaskIndex: 1, parallelism: 2 });
    expect(await staged("owners")).toBe(0);
    await first.close!();
    await second.close!();
  });

  test("staged rows that went missing fail the commit instead of being skipped", async () => {
    const w = await writer("vanished");
    await w.write(rows(0, 3));
    const prepared = await w.prepareCommit!(1);
    await db`DELETE FROM runnel_sink_staging WHERE sink = 't:public.vanished'`;
    await expect(w.commit!(1, prepared)).rejects.toThrow("staged chunks of checkpoint 1");
    await w.close!();
    expect(await count("vanished")).toBe(0);
  });
});
