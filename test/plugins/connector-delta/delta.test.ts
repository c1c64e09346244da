/**
 * The Delta Lake sink end to end through the CLI, on local disk: tables read
 * back by delta-rs and DuckDB's delta extension equal a reference run, after
 * kill -9 at every point of the commit path, and every data file on disk is
 * referenced by exactly one add action.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { runCli, startCli, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";
import { duckQuery } from "../../kit/duckdb.ts";
import { expectReadersEqualReference, readTable, runPipeline } from "../../kit/lakehouse.ts";
import { bidsSql, filesUnder, referenceRows } from "../connector-filesystem/readback.ts";

setDefaultTimeout(180_000);
const EVENTS = 60_000;
const RATE = 30_000;
let dir: string;
let reference: string;

beforeAll(async () => {
  dir = tempDir("runnel-delta-");
  reference = await referenceRows(dir, EVENTS, RATE);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const deltaWith = (path: string, extra = "") =>
  `connector = 'delta', path = '${path}', format = 'parquet', 'rolling_policy.file_size' = '250KB', 'parquet.row_group_size' = '5000',
   'partitioning.time_pattern' = 'dt=%Y-%m-%d/second=%S', 'delta.checkpoint_interval' = '3'${extra}`;

/** Add actions of every JSON commit, in order (a path added twice would show twice). */
export function addedPaths(table: string): string[] {
  const log = join(table, "_delta_log");
  const out: string[] = [];
  if (!existsSync(log)) return out;
  for (const name of readdirSync(log).filter((n) => /^\d{20}\.json$/.test(n)).sort()) {
    for (const line of readFileSync(join(log, name), "utf8").split("\n")) {
      if (line.includes('"add"')) out.push(decodeURI(JSON.parse(line).add.path));
    }
  }
  return out;
}

/** The first JSON commit that adds files. */
function addedLog(table: string): string {
  const log = join(table, "_delta_log");
  return readdirSync(log).filter((n) => /^\d{20}\.json$/.test(n)).sort().find((n) => readFileSync(join(log, n), "utf8").includes('"add"'))!;
}

/** Reads the table with both readers; checks rows against the reference and that the log references each data file once. */
async function expectTableEqualsReference(table: string, name: string): Promise<number> {
  const prefix = join(dir, `${name}-read`);
  const { summary } = readTable(["delta", table, prefix]);
  const rows = await expectReadersEqualReference(prefix, ["deltalake", "duckdb"], reference, summary);
  const added = addedPaths(table);
  expect(added.length).toBe(new Set(added).size);
  const onDisk = filesUnder(table).filter((f) => !f.includes("/_delta_log/")).map((f) => relative(table, f));
  expect(onDisk.filter((f) => basename(f).startsWith("."))).toEqual([]);
  expect(onDisk.sort()).toEqual(added.map((p) => decodeURIComponent(p)).sort());
  return rows;
}

describe("delta sink on local disk", () => {
  test("partitioned by event time, rolled by size, log checkpoints every 3 versions: delta-rs and DuckDB read every row once", async () => {
    const table = join(dir, "plain");
    const sql = writeSql(dir, bidsSql({ events: EVENTS, rate: RATE, sinkWith: deltaWith(table) }), "plain.sql");
    await runPipeline(sql, join(dir, "plain-state"), null);
    const rows = await expectTableEqualsReference(table, "plain");
    expect(rows).toBeGreaterThan(EVENTS * 0.9);
    const log = readdirSync(join(table, "_delta_log"));
    expect(log.filter((n) => n.endsWith(".checkpoint.parquet")).length).toBeGreaterThan(0);
    expect(JSON.parse(readFileSync(join(table, "_delta_log", "_last_checkpoint"), "utf8")).version % 3).toBe(0);
    const first = readFileSync(join(table, "_delta_log", "00000000000000000000.json"), "utf8");
    expect(first).toContain('"partitionColumns":["dt","second"]');
  });

  const scenarios: [string, string[]][] = [
    ["after data files were written, before the checkpoint", ["filesystem-during-rollover:2"]],
    ["after the checkpoint completed, before files and log commit", ["sink-before-commit:3"]],
    ["after the data files were made visible, before the log commit", ["delta-before-log-commit:2"]],
    ["after the log commit, before the commit was acknowledged", ["delta-after-log-commit:2"]],
    ["after the log commit, twice in a row (the restored commit is recognised)", ["delta-after-log-commit:2", "delta-after-log-commit:1"]],
    ["between a log checkpoint file and _last_checkpoint", ["delta-after-checkpoint-file:1"]],
    ["mid-file, then during recovery", ["filesystem-commit-with-open-files:1", "filesystem-recovery-before-complete:1"]],
  ];
  for (const [what, crashes] of scenarios) {
    test(`kill -9 ${what}: after restart every row once, each file added once`, async () => {
      const name = `crash-${crashes.join("+").replace(/[^a-z0-9]+/gi, "-")}`;
      const table = join(dir, name);
      const sql = writeSql(dir, bidsSql({ events: EVENTS, rate: RATE, sinkWith: deltaWith(table) }), `${name}.sql`);
      for (const c of crashes) await runPipeline(sql, join(dir, `${name}-state`), c);
      await runPipeline(sql, join(dir, `${name}-state`), null);
      await expectTableEqualsReference(table, name);
    });
  }

  test("stopped with SIGTERM and resumed twice: the rows published at each stop are in the table once", async () => {
    const table = join(dir, "stop");
    const sql = writeSql(dir, bidsSql({ events: EVENTS, rate: RATE, sinkWith: deltaWith(table) }), "stop.sql");
    const state = join(dir, "stop-state");
    for (let i = 0; i < 2; i++) {
      const proc = startCli(["run", sql, "--state-dir", state, "--checkpoint-interval", "200ms", "--quiet"]);
      // Stopped once this run has committed to the log.
      const before = addedPaths(table).length;
      await waitUntil("a commit of this run", () => existsSync(join(table, "_delta_log")) && addedPaths(table).length > before, 30_000, 20);
      proc.kill("SIGTERM");
      const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
      expect(stderr).not.toContain("rror");
      expect(code).toBe(0);
    }
    await runPipeline(sql, state, null);
    await expectTableEqualsReference(table, "stop");
  });

  test("two subtasks commit to one log (put-if-absent races), killed after a log commit: every row once", async () => {
    const table = join(dir, "parallel");
    // Smaller files: each subtask gets half the rows and must still commit several times.
    const sql = writeSql(dir, bidsSql({ events: EVENTS, rate: RATE, sinkWith: deltaWith(table).replace("250KB", "80KB") }), "parallel.sql");
    await runPipeline(sql, join(dir, "parallel-state"), "delta-after-log-commit:2", 2);
    await runPipeline(sql, join(dir, "parallel-state"), null, 2);
    await expectTableEqualsReference(table, "parallel");
  });
});

test("partitioned by an integer, a boolean and a timestamp column: partition values as delta-rs and DuckDB read them", async () => {
  const table = join(dir, "fields");
  const sql = writeSql(
    dir,
    `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000000', message_count = '3000');
CREATE TABLE out (id BIGINT, k INT, even BOOLEAN, minute TIMESTAMP, note TEXT)
WITH (connector = 'delta', path = '${table}', format = 'parquet', 'partitioning.fields' = 'k,even,minute');
INSERT INTO out SELECT CAST(counter AS BIGINT) AS id, CAST(counter % 3 AS INT) AS k, counter % 2 = 0 AS even,
  CAST('2024-05-06 07:08:00' AS TIMESTAMP) AS minute, CASE WHEN counter % 10 = 0 THEN NULL ELSE 'n/' || CAST(counter AS TEXT) END AS note FROM imp;`,
    "fields.sql",
  );
  await runPipeline(sql, join(dir, "fields-state"), null);
  const prefix = join(dir, "fields-read");
  readTable(["delta", table, prefix]);
  for (const reader of ["deltalake", "duckdb"]) {
    const rows = await duckQuery(
      `SELECT k, even, count(*) AS n, count(DISTINCT id) AS ids, sum(CASE WHEN id % 3 = k AND (id % 2 = 0) = even THEN 1 ELSE 0 END) AS right,
              count(note) AS notes, min(minute) AS minute
       FROM read_json('${prefix}-${reader}.jsonl', format = 'newline_delimited') GROUP BY k, even ORDER BY k, even`,
    );
    expect(rows.map((r) => ({ ...r, k: Number(r.k), minute: Number(r.minute) }))).toEqual(
      [0, 1, 2].flatMap((k) =>
        [false, true].map((even) => ({ k, even, n: 500n, ids: 500n, right: 500n, notes: even ? 400n : 500n, minute: Date.UTC(2024, 4, 6, 7, 8) * 1000 })),
      ),
    );
  }
  const first = readFileSync(join(table, "_delta_log", addedLog(table)), "utf8");
  expect(first).toMatch(/"partitionValues":\{"k":"[012]","even":"(true|false)","minute":"2024-05-06 07:08:00.000000"\}/);
});

test("connector 'filesystem' with table_format = 'delta' (Arroyo's spelling) writes the same table", async () => {
  const table = join(dir, "table-format");
  const sinkWith = `connector = 'filesystem', table_format = 'delta', path = '${table}', format = 'parquet', 'partitioning.time_pattern' = 'second=%S'`;
  await runPipeline(writeSql(dir, bidsSql({ events: EVENTS, rate: RATE, sinkWith }), "table-format.sql"), join(dir, "table-format-state"), null);
  await expectTableEqualsReference(table, "table-format");
});

describe("delta sink refuses at planning what it cannot write", () => {
  test("a column whose type differs from the existing table's is named, with what to write", async () => {
    const table = join(dir, "mismatch");
    const first = writeSql(dir, bidsSql({ events: 1000, rate: 100_000, sinkWith: deltaWith(table) }), "mismatch-1.sql");
    await runPipeline(first, join(dir, "mismatch-state-1"), null);
    const second = writeSql(
      dir,
      bidsSql({ events: 1000, rate: 100_000, sinkWith: deltaWith(table) }).replace("price BIGINT", "price DOUBLE").replace("bid.price", "CAST(bid.price AS DOUBLE) AS price"),
      "mismatch-2.sql",
    );
    const r = await runCli(["run", second, "--state-dir", join(dir, "mismatch-state-2"), "--quiet"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("column 'price' is double in the query but long in the Delta table");
    expect(r.stderr).toContain("CAST it to the table's type");
  });

  test("DECIMAL and unsigned columns are refused, naming the column and the cast to write", async () => {
    const sql = writeSql(
      dir,
      `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '10', message_count = '10');
CREATE TABLE out (id BIGINT, amount DECIMAL(10,2)) WITH (${deltaWith(join(dir, "decimal"))});
INSERT INTO out SELECT CAST(counter AS BIGINT) AS id, CAST(counter AS DECIMAL(10,2)) AS amount FROM imp;`,
      "decimal.sql",
    );
    const r = await runCli(["validate", sql]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("column 'amount' is DECIMAL(10,2)");
    expect(r.stderr).toContain("CAST it to DOUBLE");
  });

  test("an option of another table format through connector 'filesystem' is refused, naming the connector to use", async () => {
    const sql = writeSql(
      dir,
      bidsSql({ events: 10, rate: 100, sinkWith: `connector = 'filesystem', table_format = 'iceberg', path = '${join(dir, "tf")}', format = 'parquet', 'partitioning.fields' = 'channel'` }),
      "tf.sql",
    );
    const r = await runCli(["validate", sql]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("option 'partitioning.fields' has no meaning with table_format = 'iceberg'; write connector = 'iceberg'");
  });

  test("a time partition segment without a column name is refused with the form to write", async () => {
    const sql = writeSql(
      dir,
      bidsSql({ events: 10, rate: 100, sinkWith: deltaWith(join(dir, "badpattern")).replace("dt=%Y-%m-%d/second=%S", "%Y/%m") }),
      "badpattern.sql",
    );
    const r = await runCli(["validate", sql]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("write every segment as name=pattern");
  });
});
