/**
 * The PostgreSQL sink against the test server: appends and upserts end to
 * end through the `runnel` command, value types, and options or tables that
 * do not fit, named in the error.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { SQL } from "bun";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { freshPostgresDatabase } from "../../kit/services.ts";

setDefaultTimeout(90_000);

let url: string;
let db: SQL;

beforeAll(async () => {
  url = await freshPostgresDatabase("runnel_pgsink");
  db = new SQL(url);
});
afterAll(async () => {
  await db?.close();
});

const IMPULSE = (count: number, rate = 0) =>
  `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '${rate}', message_count = '${count}', event_time_interval = '1ms', start_time = '2024-01-01T00:00:00Z');`;

async function run(sql: string, extra: string[] = []) {
  const dir = tempDir("runnel-pgsink-");
  return runCli(["run", writeSql(dir, sql), "--state-dir", join(dir, "state"), "--checkpoint-interval", "200ms", "--quiet", ...extra]);
}

async function validate(sql: string) {
  const dir = tempDir("runnel-pgsink-");
  return runCli(["validate", writeSql(dir, sql)]);
}

describe("postgres sink", () => {
  test("append: every row once into an existing table, values in the column types", async () => {
    await db.unsafe(`CREATE TABLE appended (id bigserial PRIMARY KEY, counter bigint NOT NULL, sub integer, ts timestamptz, label text, payload jsonb, half double precision, even boolean, raw bytea)`);
    const r = await run(`${IMPULSE(2500, 5000)}
CREATE TABLE out (counter BIGINT, sub INT, ts TIMESTAMP, label TEXT, payload JSON, half DOUBLE, even BOOLEAN, raw BYTEA)
  WITH (connector = 'postgres', connection_string = '${url}', table_name = 'appended');
INSERT INTO out SELECT counter, CAST(subtask_index AS INT), timestamp, concat('n', CAST(counter AS TEXT)), concat('{"c":', CAST(counter AS TEXT), '}'),
  counter / 2.0, counter % 2 = 0, CAST(concat('x', CAST(counter AS TEXT)) AS BYTEA) FROM impulse;`);
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const [stats] = await db`SELECT count(*)::int AS n, count(DISTINCT counter)::int AS distinct_n, min(counter)::int AS lo, max(counter)::int AS hi FROM appended`;
    expect(stats).toEqual({ n: 2500, distinct_n: 2500, lo: 0, hi: 2499 });
    const [row] = await db`SELECT counter::int, sub, ts = '2024-01-01T00:00:00.007Z'::timestamptz AS ts_ok, label, payload->>'c' AS c, half, even, convert_from(raw, 'UTF8') AS raw
      FROM appended WHERE counter = 7`;
    expect(row).toEqual({ counter: 7, sub: 0, ts_ok: true, label: "n7", c: "7", half: 3.5, even: false, raw: "x7" });
    // Nothing left behind in the bookkeeping tables.
    expect((await db`SELECT count(*)::int AS n FROM runnel_sink_staging`)[0].n).toBe(0);
  });

  test("a MAP column goes into jsonb as an object keyed by the keys' text, nested maps too", async () => {
    await db.unsafe(`CREATE TABLE mapped (counter bigint PRIMARY KEY, attrs jsonb, nested jsonb)`);
    const r = await run(`${IMPULSE(20, 1000)}
CREATE TABLE out (counter BIGINT, attrs MAP<TEXT, BIGINT>, nested STRUCT<m MAP<BIGINT, TEXT>>)
  WITH (connector = 'postgres', connection_string = '${url}', table_name = 'mapped');
INSERT INTO out SELECT counter, MAP {'n': CAST(counter AS BIGINT), 'double': CAST(counter * 2 AS BIGINT)}, named_struct('m', map([CAST(counter AS BIGINT)], ['c'])) FROM impulse;`);
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const [row] = await db`SELECT attrs, nested FROM mapped WHERE counter = 7`;
    expect(row).toEqual({ attrs: { n: 7, double: 14 }, nested: { m: { "7": "c" } } });
    expect((await db`SELECT count(*)::int AS n FROM mapped`)[0].n).toBe(20);
  });

  test("upsert: an updating aggregate (GROUP BY without a window) ends as the right table", async () => {
    await db.unsafe(`CREATE TABLE per_key (k bigint PRIMARY KEY, n bigint, top bigint)`);
    const r = await run(
      `${IMPULSE(3000, 3000)}
CREATE TABLE out (k BIGINT, n BIGINT, top BIGINT) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'per_key',
  sink.mode = 'upsert', sink.primary_key = 'k');
INSERT INTO out SELECT counter % 7 AS k, count(*) AS n, max(counter) AS top FROM impulse GROUP BY k;`,
      ["--parallelism", "2"],
    );
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const rows = await db`SELECT k::int, n::int, top::int FROM per_key ORDER BY k`;
    // Two subtasks count 0..2999 each.
    const expected = Array.from({ length: 7 }, (_, k) => {
      const values = Array.from({ length: 3000 }, (_, c) => c).filter((c) => c % 7 === k);
      return { k, n: 2 * values.length, top: Math.max(...values) };
    });
    expect(rows).toEqual(expected);
  });

  test("upsert: groups that disappear are deleted, and sink.create_table makes the table with its key", async () => {
    // How many keys have each count: every count but the last is retracted along the way.
    const r = await run(`${IMPULSE(2000, 4000)}
CREATE TABLE out (n BIGINT, keys BIGINT) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'Histogram',
  sink.mode = 'upsert', sink.primary_key = 'n', sink.create_table = 'true');
INSERT INTO out SELECT n, count(*) AS keys FROM (SELECT counter % 5 AS k, count(*) AS n FROM impulse GROUP BY k) GROUP BY n;`);
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    expect(await db`SELECT n::int, keys::int FROM histogram`).toEqual([{ n: 400, keys: 5 }]);
    const [pk] = await db`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = 'histogram'::regclass AND contype = 'p'`;
    expect(pk.def).toBe("PRIMARY KEY (n)");
  });

  test("a missing table is named with the option that would create it", async () => {
    const r = await run(`${IMPULSE(10)}
CREATE TABLE out (counter BIGINT) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'nowhere');
INSERT INTO out SELECT counter FROM impulse;`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("option 'table_name': table 'nowhere' does not exist");
    expect(r.stderr).toContain("sink.create_table");
  });

  test("a table whose columns do not fit is refused before the job starts, naming the column", async () => {
    await db.unsafe(`CREATE TABLE misfit (counter bigint, note text)`);
    const missing = await run(`${IMPULSE(10)}
CREATE TABLE out (counter BIGINT, subtask BIGINT) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'misfit');
INSERT INTO out SELECT counter, subtask_index FROM impulse;`);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no column 'subtask'");
    const wrongType = await run(`${IMPULSE(10)}
CREATE TABLE out (counter BIGINT, note BOOLEAN) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'misfit');
INSERT INTO out SELECT counter, counter > 3 FROM impulse;`);
    expect(wrongType.code).toBe(1);
    expect(wrongType.stderr).toContain("column public.misfit.note is text, which cannot hold the BOOLEAN values of 'note'");
    expect((await db`SELECT count(*)::int AS n FROM misfit`)[0].n).toBe(0);
  });

  test("upsert into a table without a key on sink.primary_key is refused, naming the option", async () => {
    await db.unsafe(`CREATE TABLE keyless (k bigint, n bigint)`);
    const r = await run(`${IMPULSE(10)}
CREATE TABLE out (k BIGINT, n BIGINT) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'keyless', sink.mode = 'upsert', sink.primary_key = 'k');
INSERT INTO out SELECT counter % 3 AS k, count(*) AS n FROM impulse GROUP BY k;`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("option 'sink.primary_key'");
    expect(r.stderr).toContain("no primary key or unique index on exactly (k)");
  });

  test("an updating result in append mode is refused, pointing at sink.mode", async () => {
    await db.unsafe(`CREATE TABLE counts (k bigint, n bigint)`);
    const r = await run(`${IMPULSE(10)}
CREATE TABLE out (k BIGINT, n BIGINT) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'counts');
INSERT INTO out SELECT counter % 3 AS k, count(*) AS n FROM impulse GROUP BY k;`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("set sink.mode = 'upsert' with sink.primary_key");
  });

  test("planning errors name the option: no connection, upsert without a key, a key that is not a column, unknown options", async () => {
    const table = (options: string) => `${IMPULSE(10)}
CREATE TABLE out (k BIGINT, n BIGINT) WITH (connector = 'postgres', ${options});
INSERT INTO out SELECT counter AS k, counter AS n FROM impulse;`;
    const cases: [string, string][] = [
      [`table_name = 't'`, "set option 'connection_string'"],
      [`connection_string = 'localhost:5432', table_name = 't'`, "option 'connection_string' must be a URL"],
      [`connection_string = '${url}', table_name = 't', sink.mode = 'upsert'`, "needs option 'sink.primary_key'"],
      [`connection_string = '${url}', table_name = 't', sink.mode = 'upsert', sink.primary_key = 'id'`, "option 'sink.primary_key': no column 'id'"],
      [`connection_string = '${url}', table_name = 't', sink.primary_key = 'k'`, "only used with sink.mode = 'upsert'"],
      [`connection_string = '${url}', table = 't'`, "table_name"],
      [`connection_string = '${url}', table_name = 'a.b.c'`, "option 'table_name'"],
    ];
    for (const [options, message] of cases) {
      const r = await validate(table(options));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(message);
    }
  });

  test("a wrong database or an unreachable server is named before the job starts", async () => {
    const u = new URL(url);
    u.pathname = "/no_such_database";
    const r = await run(`${IMPULSE(10)}
CREATE TABLE out (counter BIGINT) WITH (connector = 'postgres', connection_string = '${u}', table_name = 't');
INSERT INTO out SELECT counter FROM impulse;`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('database "no_such_database" does not exist');
    expect(r.stderr).toContain("check the database in 'connection_string'");
    const unreachable = await run(`${IMPULSE(10)}
CREATE TABLE out (counter BIGINT) WITH (connector = 'postgres', host = '127.0.0.1', port = '1', database = 'x', user = 'postgres', table_name = 't', connection_timeout = '2s');
INSERT INTO out SELECT counter FROM impulse;`);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain("cannot reach PostgreSQL at 127.0.0.1:1/x (options 'host', 'port', 'database')");
  });
});
