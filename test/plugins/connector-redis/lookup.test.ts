/**
 * Redis lookup tables against a real server: INNER and LEFT lookup joins
 * (Arroyo's and Flink's syntax, with and without a cache, at parallelism 1
 * and 2) give what DuckDB gives joining the same rows; a cache with a TTL
 * serves the old value until it expires and the new one after; a cache too
 * small for the keys evicts (more keys are read from Redis); a store that is
 * down fails the job naming the table; and a job killed with SIGKILL and
 * restored from its checkpoints writes every joined row exactly once.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";
import { Job } from "../../../core/dataflow/job.ts";
import type { SinkWriter } from "../../../core/plugin-api/index.ts";
import { planSql } from "../../../core/sql/index.ts";
import { eventually, runCli, startCli, tempDir, writeSql } from "../../kit/cli.ts";
import { closeRedisKit, REDIS_URL, redisClient, uniquePrefix } from "../../kit/redis.ts";
import { freshPostgresDatabase } from "../../kit/services.ts";
import { duckSql, prng, runnelTables, runSql, sameRows, testRegistry, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(120_000);
afterAll(closeRedisKit);

const rand = prng(12);
const CUSTOMERS = 30;
/** Customers 0..29 are in Redis; the stream also asks for 30..39 (no match) and NULL. */
const customers: TableSpec = {
  name: "customers",
  columns: [
    { name: "key", type: "TEXT" },
    { name: "name", type: "TEXT" },
    { name: "tier", type: "BIGINT" },
  ],
  rows: Array.from({ length: CUSTOMERS }, (_, i) => [`c${i}`, `name ${i}`, i % 3]),
};
const T0 = 1_700_000_000_000_000;
const stream: TableSpec = {
  name: "s",
  columns: [
    { name: "id", type: "BIGINT" },
    { name: "cust", type: "TEXT" },
    { name: "ts", type: "TIMESTAMP" },
  ],
  rows: Array.from({ length: 400 }, (_, i) => [i, rand() < 0.05 ? null : `c${Math.floor(rand() * 40)}`, T0 + i * 1000]),
  watermark: "ts",
  batch: 23,
};

let prefix: string;
beforeAll(async () => {
  prefix = uniquePrefix("lookup");
  const r = redisClient();
  for (const [key, name, tier] of customers.rows) await r.set(`${prefix}${key}`, JSON.stringify({ name, tier }));
});

const lookupTable = (options = "") =>
  `CREATE TABLE customers (key TEXT METADATA FROM 'key' PRIMARY KEY, name TEXT, tier BIGINT) WITH (connector = 'redis', address = '${REDIS_URL}', 'target.key_prefix' = '${prefix}', format = 'json', type = 'lookup'${options});`;

describe("redis lookup joins agree with DuckDB", () => {
  const query = (kind: string, asOf = "") => `SELECT s.id, s.cust, c.name, c.tier FROM s ${kind} JOIN customers${asOf} c ON s.cust = c.key`;
  for (const [kind, options, parallelism, asOf] of [
    ["LEFT", "", 1, ""],
    ["INNER", "", 2, ""],
    ["LEFT", ", 'lookup.cache.max_bytes' = '0'", 2, ""],
    ["INNER", ", 'lookup.cache.ttl' = '1 minute'", 1, " FOR SYSTEM_TIME AS OF s.ts AS"],
  ] as const) {
    test(`${kind} JOIN${asOf ? " FOR SYSTEM_TIME AS OF" : ""}${options ? ` with${options.slice(1)}` : ""}, parallelism ${parallelism}`, async () => {
      const sql = `${runnelTables([stream])}\n${lookupTable(options)}\n${query(kind, asOf)};`;
      const ours = await runSql(sql, { parallelism });
      expect(ours.updating).toBe(false);
      const theirs = await duckSql([stream, customers], query(kind));
      expect(theirs.length).toBeGreaterThan(kind === "LEFT" ? 399 : 200);
      expect(sameRows(ours.rows, theirs)).toBeNull();
    });
  }
});

describe("the lookup cache", () => {
  test("a cache too small for the keys evicts them: more keys are read from Redis than with room for all", async () => {
    const misses = async (maxBytes: string) => {
      let job: Job | undefined;
      await runSql(`${runnelTables([stream])}\n${lookupTable(`, 'lookup.cache.max_bytes' = '${maxBytes}'`)}\nSELECT s.id, c.name FROM s JOIN customers c ON s.cust = c.key;`, { onJob: (j) => (job = j) });
      const op = job!.metrics.operators.find((m) => m.operatorName.includes("lookup join"))!;
      return op.connector;
    };
    const roomy = await misses("1MB");
    // Each of the 40 distinct keys is read once, then served from the cache.
    expect(roomy.lookup_keys_total).toBe(40);
    expect(roomy.lookup_cache_hits_total! + roomy.lookup_cache_misses_total!).toBeGreaterThan(40);
    const tiny = await misses("400");
    expect(tiny.lookup_keys_total).toBeGreaterThan(100);
  });

  test("with a TTL the old value is served until it expires, the new one after", async () => {
    const key = `${prefix}ttl`;
    await redisClient().set(key, JSON.stringify({ name: "old", tier: 0 }));
    const long = streamingJob(`'lookup.cache.ttl' = '1h'`);
    const short = streamingJob(`'lookup.cache.ttl' = '300ms'`);
    try {
      await eventually("both jobs joined the old value", () => long.names().includes("old") && short.names().includes("old"));
      await redisClient().set(key, JSON.stringify({ name: "new", tier: 1 }));
      const changedAt = long.names().length;
      await eventually("the short TTL's job joined the new value", () => short.names().includes("new"));
      // The long TTL's job went on joining rows after the change, all from its cache.
      await eventually("the long TTL's job joined 200 more rows", () => long.names().length > changedAt + 200);
      expect(new Set(long.names())).toEqual(new Set(["old"]));
    } finally {
      await Promise.all([long.stop(), short.stop()]);
    }
  });
});

/** An unbounded impulse stream looking up the key 'ttl' for every row, in this process; its joined names as they come. */
function streamingJob(cacheOptions: string) {
  const sql = `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '500');
${lookupTable(`, ${cacheOptions}`)}
SELECT c.name FROM imp JOIN customers c ON 'ttl' = c.key;`;
  const names: string[] = [];
  const writer: SinkWriter = { write: (batch) => void names.push(...batch.rows.map((r) => r[0] as string)) };
  const stateDir = mkdtempSync(join(tmpdir(), "runnel-lookup-ttl-"));
  let job: Job;
  const running = testRegistry().then((registry) => {
    job = new Job(planSql(sql, registry), registry, { parallelism: 1, stateDir, checkpointIntervalMs: 0, preview: () => writer, log: { info() {}, warn() {} } });
    return job.run();
  });
  return {
    names: () => names,
    async stop() {
      await eventually("the job started", () => job !== undefined);
      job.stop();
      await running;
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

describe("failures", () => {
  test("a store that is down fails the job, naming the table and the address", async () => {
    const dir = tempDir("runnel-lookup-down-");
    const sql = writeSql(
      dir,
      `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '0', message_count = '10');
CREATE TABLE customers (key TEXT METADATA FROM 'key' PRIMARY KEY, name TEXT) WITH (connector = 'redis', address = 'redis://127.0.0.1:1', format = 'json', type = 'lookup');
SELECT c.name FROM imp LEFT JOIN customers c ON CAST(counter AS TEXT) = c.key;`,
    );
    const result = await runCli(["run", sql, "--state-dir", join(dir, "state"), "--quiet"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("table customers: cannot connect to Redis at 'redis://127.0.0.1:1'");
  });

  test("kill -9 and restore: every joined row reaches the PostgreSQL sink exactly once, with its lookup value", async () => {
    const url = await freshPostgresDatabase("runnel_lookup_crash");
    const db = new SQL(url);
    const COUNT = 4000;
    const dir = tempDir("runnel-lookup-crash-");
    const file = writeSql(
      dir,
      `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '2000', message_count = '${COUNT}');
${lookupTable(", 'lookup.cache.max_bytes' = '2KB'")}
CREATE TABLE out (id BIGINT, name TEXT) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'joined', sink.create_table = 'true');
INSERT INTO out SELECT CAST(counter AS BIGINT) AS id, c.name FROM imp JOIN customers c ON CONCAT('c', CAST(counter % 40 AS TEXT)) = c.key;`,
    );
    const args = ["run", file, "--state-dir", join(dir, "state"), "--checkpoint-interval", "200ms", "--parallelism", "1", "--quiet"];
    try {
      for (const delay of [700, 1100, 900]) {
        const proc = startCli(args);
        await Bun.sleep(delay); // a kill at some moment of the run, not a wait for something
        const alive = proc.exitCode === null;
        proc.kill("SIGKILL");
        await proc.exited;
        expect(alive).toBe(true);
      }
      const last = await runCli(args, { timeoutMs: 60_000 });
      expect(last.stderr).toContain("finished: input exhausted");
      expect(last.code).toBe(0);
      const rows = (await db`SELECT id, name FROM joined`) as { id: string | number; name: string }[];
      const expected = Array.from({ length: COUNT }, (_, i) => i).filter((i) => i % 40 < CUSTOMERS);
      const ids = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
      expect(ids).toEqual(expected);
      for (const r of rows) expect(r.name).toBe(`name ${Number(r.id) % 40}`);
    } finally {
      await db.close();
    }
  });
});
