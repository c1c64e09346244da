/**
 * The PostgreSQL sink is exactly-once across crashes: jobs killed with SIGKILL
 * at random moments and at the `sink-before-commit` crash point (checkpoint
 * complete, batch not yet moved into the table), then rerun with the same
 * state dir — also with another parallelism — leave every row in the table
 * once, or in upsert mode the table an uninterrupted run gives.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { SQL } from "bun";
import { runCli, startCli, tempDir, writeSql } from "../../kit/cli.ts";
import { freshPostgresDatabase } from "../../kit/services.ts";

setDefaultTimeout(180_000);

let url: string;
let db: SQL;

beforeAll(async () => {
  url = await freshPostgresDatabase("runnel_pgcrash");
  db = new SQL(url);
});
afterAll(async () => {
  await db?.close();
});

const PER_SUBTASK = 6000;

const appendPipeline = (table: string) => `
CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '1200', message_count = '${PER_SUBTASK}', event_time_interval = '1ms', start_time = '2024-01-01T00:00:00Z');
CREATE TABLE out (sub BIGINT, counter BIGINT) WITH (connector = 'postgres', connection_string = '${url}', table_name = '${table}', sink.create_table = 'true');
INSERT INTO out SELECT subtask_index AS sub, counter FROM impulse;`;

/** Deterministic kill moments, spread over a run's life (startup included). */
function killDelays(seed: number, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    out.push(300 + (seed % 1800));
  }
  return out;
}

function job(sql: string) {
  const dir = tempDir("runnel-pgcrash-");
  const file = writeSql(dir, sql);
  return (parallelism: number) => ["run", file, "--state-dir", join(dir, "state"), "--checkpoint-interval", "200ms", "--parallelism", String(parallelism), "--quiet"];
}

async function kill(args: string[], delayMs: number) {
  const proc = startCli(args);
  await Bun.sleep(delayMs);
  proc.kill("SIGKILL");
  await proc.exited;
}

/** Runs until the process kills itself at the crash point; returns the rows committed by then. */
async function crashBeforeCommit(args: string[], table: string, nth: number) {
  const proc = startCli(args, undefined, { RUNNEL_CRASH_AT: `sink-before-commit:${nth}` });
  await proc.exited;
  expect(proc.signalCode).toBe("SIGKILL");
  return (await db.unsafe(`SELECT count(*)::int AS n FROM ${table}`))[0].n as number;
}

async function finish(args: string[]) {
  const r = await runCli(args, { timeoutMs: 60_000 });
  expect(r.stderr).not.toContain("error");
  expect(r.code).toBe(0);
}

async function expectEveryRowOnce(table: string, subtasks: number) {
  const [stats] = await db.unsafe(`SELECT count(*)::int AS n, count(DISTINCT (sub, counter))::int AS distinct_n FROM ${table}`);
  expect(stats).toEqual({ n: subtasks * PER_SUBTASK, distinct_n: subtasks * PER_SUBTASK });
  const perSub = await db.unsafe(`SELECT sub::int, min(counter)::int AS lo, max(counter)::int AS hi FROM ${table} GROUP BY sub ORDER BY sub`);
  expect(perSub).toEqual(Array.from({ length: subtasks }, (_, sub) => ({ sub, lo: 0, hi: PER_SUBTASK - 1 })));
  const [staged] = await db.unsafe(`SELECT count(*)::int AS n FROM runnel_sink_staging WHERE sink = $1`, [`out:public.${table}`]);
  expect(staged.n).toBe(0);
}

describe("postgres sink, killed and restored", () => {
  test("append, parallelism 2: 4 kill -9 and one at sink-before-commit, then every row once", async () => {
    const args = job(appendPipeline("killed"));
    const delays = killDelays(11, 4);
    for (const delay of delays.slice(0, 2)) await kill(args(2), delay);
    const before = await crashBeforeCommit(args(2), "killed", 3);
    expect(before).toBeLessThan(2 * PER_SUBTASK);
    for (const delay of delays.slice(2)) await kill(args(2), delay);
    await finish(args(2));
    await expectEveryRowOnce("killed", 2);
  });

  test("append: killed at sink-before-commit with 2 subtasks, restored with 1, then with 3: both batches committed once", async () => {
    const args = job(appendPipeline("rescaled"));
    await crashBeforeCommit(args(2), "rescaled", 2);
    await crashBeforeCommit(args(1), "rescaled", 2);
    await kill(args(3), 900);
    await finish(args(3));
    await expectEveryRowOnce("rescaled", 2);
  });

  test("upsert of an updating aggregate: kill -9 and sink-before-commit leave the table of an uninterrupted run", async () => {
    await db.unsafe(`CREATE TABLE per_key (k bigint PRIMARY KEY, n bigint NOT NULL, total bigint NOT NULL)`);
    const args = job(`
CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '1000', message_count = '${PER_SUBTASK}', event_time_interval = '1ms', start_time = '2024-01-01T00:00:00Z');
CREATE TABLE out (k BIGINT, n BIGINT, total BIGINT) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'per_key',
  sink.mode = 'upsert', sink.primary_key = 'k');
INSERT INTO out SELECT counter % 13 AS k, count(*) AS n, sum(counter) AS total FROM impulse GROUP BY k;`);
    for (const delay of killDelays(5, 3)) await kill(args(2), delay);
    await crashBeforeCommit(args(2), "per_key", 2);
    await finish(args(2));
    const expected = Array.from({ length: 13 }, (_, k) => {
      let n = 0;
      let total = 0;
      for (let c = k; c < PER_SUBTASK; c += 13) {
        n += 2;
        total += 2 * c;
      }
      return { k, n, total };
    });
    expect(await db`SELECT k::int, n::int, total::int FROM per_key ORDER BY k`).toEqual(expected);
  });
});
