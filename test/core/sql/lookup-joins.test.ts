/**
 * Planning lookup joins: Arroyo's declaration (type = 'lookup' or CREATE
 * TEMPORARY TABLE, `lookup.cache.*` options) and Flink's FOR SYSTEM_TIME AS
 * OF both plan into a lookup_join node; every form that cannot be honoured is
 * refused at its line and column with what to write instead. Arroyo's own
 * planner tests that use a Redis lookup table are here too. Results are
 * checked against DuckDB in the connectors' lookup tests.
 */
import { describe, expect, test } from "bun:test";
import type { PlanNode } from "../../../core/plan/logical.ts";
import { planSql } from "../../../core/sql/index.ts";
import { planError, testRegistry } from "../../kit/sql.ts";

const STREAM = `CREATE TABLE s (id BIGINT, cust TEXT, n BIGINT, ts TIMESTAMP, WATERMARK FOR ts) WITH (connector = 'test_rows', dataset = 'none');`;
const REDIS = (extra = "") =>
  `CREATE TABLE c (key TEXT METADATA FROM 'key' PRIMARY KEY, name TEXT, tier BIGINT) WITH (connector = 'redis', address = 'redis://127.0.0.1:16379', format = 'json', type = 'lookup'${extra});`;
const PG = `CREATE TABLE p (a BIGINT, b TEXT, v TEXT, PRIMARY KEY (a, b)) WITH (connector = 'postgres', connection_string = 'postgres://x@127.0.0.1:1/db', table_name = 't', type = 'lookup');`;

async function plan(sql: string) {
  return planSql(sql, await testRegistry());
}

function find(node: PlanNode, kind: PlanNode["kind"]): PlanNode | undefined {
  if (node.kind === kind) return node;
  if (node.kind === "source") return undefined;
  if (node.kind === "union") return node.inputs.map((n) => find(n, kind)).find(Boolean);
  if (node.kind === "join") return find(node.left, kind) ?? find(node.right, kind);
  return find(node.input, kind);
}

describe("lookup joins plan", () => {
  test("Arroyo's form: LEFT JOIN on the key, cache options read", async () => {
    const p = await plan(`${STREAM}\n${REDIS(", 'lookup.cache.max_bytes' = '1MB', 'lookup.cache.ttl' = interval '5' second")}\nSELECT s.id, c.name FROM s LEFT JOIN c ON s.cust = c.key;`);
    const node = find(p.sinks[0]!.input, "lookup_join") as Extract<PlanNode, { kind: "lookup_join" }>;
    expect(node.joinType).toBe("left");
    expect(node.table.lookup).toEqual({ maxBytes: 1024 * 1024, ttlMicros: 5_000_000 });
    expect(node.keys).toEqual([{ kind: "column", index: 1, name: "cust", type: { kind: "string" } }]);
    expect(node.schema.fields.map((f) => [f.name, f.nullable])).toEqual([["id", true], ["cust", true], ["n", true], ["ts", true], ["name", true], ["tier", true], ["key", true]]);
  });

  test("defaults: 8 MiB cache, no TTL; CREATE TEMPORARY TABLE is a lookup table", async () => {
    const p = await plan(`${STREAM}
CREATE TEMPORARY TABLE c (key TEXT METADATA FROM 'key' PRIMARY KEY, name TEXT) WITH (connector = 'redis', address = 'redis://127.0.0.1:16379', format = 'json');
SELECT s.id, c.name FROM s JOIN c ON c.key = s.cust;`);
    const node = find(p.sinks[0]!.input, "lookup_join") as Extract<PlanNode, { kind: "lookup_join" }>;
    expect(node.joinType).toBe("inner");
    expect(node.table.lookup).toEqual({ maxBytes: 8 * 1024 * 1024, ttlMicros: null });
  });

  test("Flink's form: FOR SYSTEM_TIME AS OF the stream's event-time column", async () => {
    const p = await plan(`${STREAM}\n${REDIS()}\nSELECT s.id, l.name FROM s JOIN c FOR SYSTEM_TIME AS OF s.ts AS l ON s.cust = l.key;`);
    expect(find(p.sinks[0]!.input, "lookup_join")).toBeDefined();
  });

  test("a composite key, each column given by an equality with the stream", async () => {
    const p = await plan(`${STREAM}\n${PG}\nSELECT s.id, p.v FROM s JOIN p ON p.b = s.cust AND s.n + 1 = p.a;`);
    const node = find(p.sinks[0]!.input, "lookup_join") as Extract<PlanNode, { kind: "lookup_join" }>;
    expect(node.keys.map((k) => k.kind)).toEqual(["call", "column"]);
  });

  test("Arroyo's planner test lookup_join.sql plans (its repeated `format` option aside)", async () => {
    // Arroyo's file gives format twice ('raw_string', then 'json': its last wins); Runnel refuses a repeated option.
    const sql = `CREATE TABLE events (event_id TEXT, timestamp TIMESTAMP, customer_id TEXT, event_type TEXT)
WITH (connector = 'kafka', topic = 'events', type = 'source', format = 'json', bootstrap_servers = 'broker:9092');
create temporary table customers (
    customer_id TEXT METADATA FROM 'key' PRIMARY KEY,
    customer_name TEXT,
    plan TEXT
) with (
    connector = 'redis',
    address = 'redis://localhost:6379',
    format = 'json',
    'lookup.cache.max_bytes' = 1000000,
    'lookup.cache.ttl' = interval '5' second
);
SELECT  e.event_id,  e.timestamp,  e.customer_id,  e.event_type, c.customer_name, c.plan
FROM  events e
LEFT JOIN customers c
ON e.customer_id = c.customer_id
WHERE c.plan = 'Premium';`;
    const p = await plan(sql);
    expect(find(p.sinks[0]!.input, "lookup_join")).toBeDefined();
    const twice = await planError(sql.replace("format = 'json',\n    'lookup", "format = 'raw_string',\n    format = 'json',\n    'lookup"));
    expect(twice.message).toBe("option 'format' is given twice");
  });
});

describe("lookup joins Runnel refuses", () => {
  test("Arroyo's error_lookup_join_non_primary_key.sql: a condition on a column that is not the key", async () => {
    const err = await planError(`CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '2');
create temporary table lookup (key TEXT METADATA FROM 'key' PRIMARY KEY, value TEXT, len INT)
with (connector = 'redis', address = 'redis://localhost:6379', format = 'json', 'lookup.cache.max_bytes' = 100000);
select A.counter, B.key, B.value, len
from impulse A inner join lookup B
on cast((A.counter % 10) as TEXT) = B.value;`);
    expect(err.message).toContain("`value` is not a key column");
    expect(err.message).toContain("Move other conditions to WHERE");
    expect(err).toMatchObject({ line: 6, column: 4 });
  });

  test("Arroyo's error_missing_redis_key.sql: the key is not METADATA FROM 'key'", async () => {
    const err = await planError(`CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '2');
create table lookup (key TEXT PRIMARY KEY, value TEXT) with (connector = 'redis', format = 'json', address = 'redis://localhost:6379', type = 'lookup');
select A.counter, B.key, B.value from impulse A left join lookup B on cast((A.counter % 10) as TEXT) = B.key;`);
    expect(err.message).toContain("`name TEXT METADATA FROM 'key' PRIMARY KEY`");
  });

  test("a non-equality condition in ON, at its place, with the rewrite for a LEFT join", async () => {
    const err = await planError(`${STREAM}\n${REDIS()}\nSELECT * FROM s LEFT JOIN c ON s.cust = c.key AND c.tier > 2;`);
    expect(err.at).toStartWith("c.tier > 2");
    expect(err.message).toContain("test them with CASE in the SELECT list");
  });

  test("RIGHT and FULL joins with a lookup table", async () => {
    for (const kind of ["RIGHT", "FULL OUTER"]) {
      const err = await planError(`${STREAM}\n${REDIS()}\nSELECT * FROM s ${kind} JOIN c ON s.cust = c.key;`);
      expect(err.message).toContain("only [INNER] JOIN and LEFT JOIN can use it");
      expect(err.at).toStartWith(kind.split(" ")[0]!);
    }
  });

  test("a lookup table read as a stream, or on the left of a join", async () => {
    const alone = await planError(`${STREAM}\n${REDIS()}\nSELECT * FROM c;`);
    expect(alone.message).toContain("is a lookup table: it is read by key in a join, not as a stream");
    expect(alone.at).toStartWith("c;");
    const leftSide = await planError(`${STREAM}\n${REDIS()}\nSELECT * FROM c JOIN s ON s.cust = c.key;`);
    expect(leftSide.at).toStartWith("c JOIN s");
  });

  test("a key column missing from ON, and a key compared with another type", async () => {
    const missing = await planError(`${STREAM}\n${PG}\nSELECT * FROM s JOIN p ON p.a = s.n;`);
    expect(missing.message).toContain("must give every PRIMARY KEY column of `p`; add stream.col = p.b");
    const typed = await planError(`${STREAM}\n${REDIS()}\nSELECT * FROM s JOIN c ON c.key = s.n;`);
    expect(typed.message).toContain("CAST the stream's side to TEXT");
    expect(typed.at).toStartWith("c.key = s.n");
  });

  test("FOR SYSTEM_TIME AS OF a column that is not a time attribute, or on a table that is not a lookup table", async () => {
    const notTime = await planError(`${STREAM}\n${REDIS()}\nSELECT * FROM s JOIN c FOR SYSTEM_TIME AS OF s.cust AS l ON s.cust = l.key;`);
    expect(notTime.message).toContain("is not a time column of the stream");
    expect(notTime.at).toStartWith("s.cust AS l");
    const stream = await planError(`${STREAM}\nCREATE TABLE t (cust TEXT) WITH (connector = 'test_rows', dataset = 'none');\nSELECT * FROM s JOIN t FOR SYSTEM_TIME AS OF s.ts ON s.cust = t.cust;`);
    expect(stream.message).toContain("declare `t` with type = 'lookup'");
    expect(stream.at).toStartWith("FOR SYSTEM_TIME");
  });

  test("a lookup table without a PRIMARY KEY, on a connector without lookups, inserted into, or cache options on a stream", async () => {
    const noKey = await planError(`CREATE TABLE c (name TEXT) WITH (connector = 'redis', address = 'redis://h:1', format = 'json', type = 'lookup');\nSELECT 1;`);
    expect(noKey.message).toContain("needs a PRIMARY KEY");
    const kafka = await planError(`CREATE TABLE c (k TEXT PRIMARY KEY) WITH (connector = 'kafka', topic = 't', bootstrap_servers = 'b:1', format = 'json', type = 'lookup');\nSELECT 1;`);
    expect(kafka.message).toMatch(/connector 'kafka' cannot be a lookup table; lookup connectors: .*postgres, redis/);
    const insert = await planError(`${STREAM}\n${REDIS()}\nINSERT INTO c SELECT cust, cust, n FROM s;`);
    expect(insert.message).toContain("is a lookup table (read by key in joins); it cannot be inserted into");
    const option = await planError(`CREATE TABLE x (a TEXT) WITH (connector = 'test_rows', dataset = 'none', 'lookup.cache.ttl' = '5s');\nSELECT * FROM x;`);
    expect(option.message).toContain("applies to lookup tables; add type = 'lookup'");
    expect(option.at).toStartWith("'lookup.cache.ttl'");
  });

  test("a lookup join over an updating input", async () => {
    const err = await planError(`${STREAM}\n${REDIS()}\nSELECT * FROM (SELECT cust, count(*) AS k FROM s GROUP BY cust) g JOIN c ON g.cust = c.key;`);
    expect(err.message).toContain("a lookup join reads an append-only stream");
  });
});
