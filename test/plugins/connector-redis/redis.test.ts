/**
 * The Redis sink against a real server: each target (string with TTL, hash,
 * list trimmed, stream capped), exactly_once through kill -9 and through a kill right after a
 * MULTI/EXEC (each row once in a list), at_least_once through kill -9 (none
 * lost), a key of another type named with the target. Lookup tables are
 * tested in lookup.test.ts.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { runCli, startCli, tempDir, writeSql } from "../../kit/cli.ts";
import { closeRedisKit, REDIS_OPTS, redisClient, uniquePrefix } from "../../kit/redis.ts";
import { sinkUnderKills } from "../../kit/sink-crash.ts";

setDefaultTimeout(60_000);
afterAll(closeRedisKit);

/** A bounded job writing `count` impulse rows (id, v, g = id mod 5) into a redis table with `options`. */
async function writeRows(options: string, count: number, select = "SELECT CAST(counter AS BIGINT) AS id, CONCAT('v', CAST(counter AS TEXT)) AS v, CAST(counter % 5 AS BIGINT) AS g FROM imp") {
  const dir = tempDir("runnel-redis-");
  const sql = writeSql(
    dir,
    `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '0', message_count = '${count}');
CREATE TABLE out WITH (connector = 'redis', ${REDIS_OPTS}, ${options}, type = 'sink', format = 'json');
INSERT INTO out ${select};`,
  );
  return runCli(["run", sql, "--state-dir", join(dir, "state"), "--quiet"]);
}

describe("redis sink targets", () => {
  test("string: one key per row from target.key_column, with target.ttl_secs", async () => {
    const prefix = uniquePrefix("str");
    const r = await writeRows(`target = 'string', 'target.key_prefix' = '${prefix}', 'target.key_column' = 'id', 'target.ttl_secs' = '300'`, 50);
    expect(r.code).toBe(0);
    const c = redisClient();
    expect(JSON.parse((await c.get(`${prefix}7`))!)).toEqual({ id: 7, v: "v7", g: 2 });
    expect((await c.keys(`${prefix}*`)).length).toBe(50);
    const ttl = await c.ttl(`${prefix}7`);
    expect(ttl).toBeGreaterThan(200);
    expect(ttl).toBeLessThanOrEqual(300);
  });

  test("hash: a field per row (target.field_column) in the hash of its key", async () => {
    const prefix = uniquePrefix("hash");
    const r = await writeRows(`target = 'hash', 'target.key_prefix' = '${prefix}', 'target.key_column' = 'g', 'target.field_column' = 'id'`, 50);
    expect(r.code).toBe(0);
    const h = await redisClient().hgetall(`${prefix}3`);
    expect(Object.keys(h).map(Number).sort((a, b) => a - b)).toEqual([3, 8, 13, 18, 23, 28, 33, 38, 43, 48]);
    expect(JSON.parse(h["18"]!)).toEqual({ id: 18, v: "v18", g: 3 });
  });

  test("list: appended in order and trimmed to target.max_length; prepend puts the newest first", async () => {
    const prefix = uniquePrefix("list");
    expect((await writeRows(`target = 'list', 'target.key_prefix' = '${prefix}a', 'target.max_length' = '10'`, 100)).code).toBe(0);
    expect((await redisClient().lrange(`${prefix}a`, 0, -1)).map((v) => JSON.parse(v).id)).toEqual(Array.from({ length: 10 }, (_, i) => 90 + i));
    expect((await writeRows(`target = 'list', 'target.key_prefix' = '${prefix}b', 'target.operation' = 'prepend', 'target.max_length' = '3'`, 100)).code).toBe(0);
    expect((await redisClient().lrange(`${prefix}b`, 0, -1)).map((v) => JSON.parse(v).id)).toEqual([99, 98, 97]);
  });

  test("stream: one entry per row with the row in field 'value'", async () => {
    const prefix = uniquePrefix("stream");
    expect((await writeRows(`target = 'stream', 'target.key_prefix' = '${prefix}s'`, 30)).code).toBe(0);
    const entries = await redisClient().xrange(`${prefix}s`, "-", "+");
    expect(entries.length).toBe(30);
    expect(entries[4]![1]).toEqual(["value", JSON.stringify({ id: 4, v: "v4", g: 4 })]);
  });

  test("a key holding another type fails the job with Redis's answer and the target", async () => {
    const prefix = uniquePrefix("wrong");
    await redisClient().set(`${prefix}l`, "a string");
    const r = await writeRows(`target = 'list', 'target.key_prefix' = '${prefix}l'`, 5);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("WRONGTYPE");
    expect(r.stderr).toContain("target = 'list'");
  });
});

describe("redis sink delivery", () => {
  test("exactly_once, kill -9 three times: every row is in the list exactly once", async () => {
    const prefix = uniquePrefix("eo");
    const report = await sinkUnderKills({
      sinkOptions: `connector = 'redis', ${REDIS_OPTS}, target = 'list', 'target.key_prefix' = '${prefix}l', 'sink.commit_mode' = 'exactly_once', format = 'json'`,
      readIds: async () => (await redisClient().lrange(`${prefix}l`, 0, -1)).map((v) => JSON.parse(v).id),
    });
    expect(report.missing).toEqual([]);
    expect(report.duplicates).toBe(0);
  });

  test("exactly_once, killed right after a MULTI/EXEC was applied: the restored commit is not applied again", async () => {
    const prefix = uniquePrefix("eo-window");
    const dir = tempDir("runnel-redis-window-");
    const sql = writeSql(
      dir,
      `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '2000', message_count = '1500');
CREATE TABLE out (id BIGINT) WITH (connector = 'redis', ${REDIS_OPTS}, target = 'list', 'target.key_prefix' = '${prefix}l', 'sink.commit_mode' = 'exactly_once', type = 'sink', format = 'json');
INSERT INTO out SELECT CAST(counter AS BIGINT) AS id FROM imp;`,
    );
    const args = ["run", sql, "--state-dir", join(dir, "state"), "--checkpoint-interval", "200ms", "--quiet"];
    const crashed = startCli(args, undefined, { RUNNEL_CRASH_AT: "redis-sink-after-exec:2" });
    await crashed.exited;
    expect(crashed.signalCode).toBe("SIGKILL");
    const last = startCli(args);
    expect(await last.exited).toBe(0);
    const ids = (await redisClient().lrange(`${prefix}l`, 0, -1)).map((v) => JSON.parse(v).id);
    expect(ids).toEqual(Array.from({ length: 1500 }, (_, i) => i));
  });

  test("at_least_once, kill -9 three times: no row is lost", async () => {
    const prefix = uniquePrefix("alo");
    const report = await sinkUnderKills({
      sinkOptions: `connector = 'redis', ${REDIS_OPTS}, target = 'list', 'target.key_prefix' = '${prefix}l', format = 'json'`,
      readIds: async () => (await redisClient().lrange(`${prefix}l`, 0, -1)).map((v) => JSON.parse(v).id),
    });
    expect(report.missing).toEqual([]);
  });
});
