/**
 * Reading back what the filesystem sink wrote, with two readers that share no
 * code with it: DuckDB and pyarrow. Both are compared row by row (EXCEPT ALL
 * both ways) with a reference: the same query written by the single_file
 * sink as JSON lines.
 */
import { expect } from "bun:test";
import { mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { S3Client } from "@aws-sdk/client-s3";
import { runCli, writeSql } from "../../kit/cli.ts";
import { duckQuery } from "../../kit/duckdb.ts";
import { getObject, listKeys, PYTHON } from "../../kit/s3.ts";

/** Bids from a seeded generator: the same every run at the same rate (the rate spaces event times). */
export function bidsSql(opts: { events: number; rate: number; sinkWith: string; columns?: string }): string {
  return `
CREATE TABLE nexmark WITH (
  connector = 'nexmark', event_rate = '${opts.rate}', message_count = '${opts.events}',
  seed = '7', base_time = '2024-01-01T00:00:00Z'
);
CREATE TABLE out (
  time TIMESTAMP, auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, extra TEXT
) WITH (${opts.sinkWith});
INSERT INTO out
SELECT bid.datetime AS time, bid.auction, bid.bidder, bid.price, bid.channel, bid.url, bid.extra
FROM nexmark WHERE bid IS NOT NULL;
`;
}

export const COLUMNS = "time, auction, bidder, price, channel, url, extra";

/** Runs the query into a single_file JSON sink: the rows every other run must reproduce. */
export async function referenceRows(dir: string, events: number, rate: number): Promise<string> {
  const out = join(dir, "reference.jsonl");
  const sql = writeSql(dir, bidsSql({ events, rate, sinkWith: `connector = 'single_file', path = '${out}', format = 'json', type = 'sink'` }), "reference.sql");
  const r = await runCli(["run", sql, "--state-dir", join(dir, "reference-state"), "--quiet"]);
  expect(r.stderr).not.toContain("error");
  expect(r.code).toBe(0);
  return out;
}

export const REF = (file: string) =>
  `(SELECT epoch_us(CAST(time AS TIMESTAMPTZ)) AS time, auction, bidder, price, channel, url, extra
    FROM read_json('${file}', columns = {time: 'VARCHAR', auction: 'BIGINT', bidder: 'BIGINT', price: 'BIGINT', channel: 'VARCHAR', url: 'VARCHAR', extra: 'VARCHAR'}, format = 'newline_delimited'))`;

/** Files under a directory, recursively (hidden staging files included, so leftovers show). */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** Downloads every object under a prefix into a local directory; returns the local paths. */
export async function download(client: S3Client, bucket: string, prefix: string, into: string): Promise<string[]> {
  const out: string[] = [];
  for (const { key } of await listKeys(client, bucket, prefix)) {
    const local = join(into, key);
    mkdirSync(dirname(local), { recursive: true });
    writeFileSync(local, await getObject(client, bucket, key));
    out.push(local);
  }
  return out;
}

const list = (files: string[]) => `[${files.map((f) => `'${f}'`).join(", ")}]`;

export async function exceptBothWays(actual: string, reference: string): Promise<{ missing: number; extra: number; rows: number }> {
  const [r] = await duckQuery(`
    WITH a AS ${actual}, r AS ${reference}
    SELECT (SELECT count(*) FROM (SELECT * FROM r EXCEPT ALL SELECT * FROM a)) AS missing,
           (SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM r)) AS extra,
           (SELECT count(*) FROM a) AS rows`);
  return { missing: Number(r!.missing), extra: Number(r!.extra), rows: Number(r!.rows) };
}

/**
 * Checks that the Parquet files hold exactly the reference rows (no
 * duplicate, none missing), read by DuckDB and, separately, by pyarrow.
 */
export async function expectParquetEqualsReference(files: string[], reference: string, scratch: string): Promise<number> {
  expect(files.length).toBeGreaterThan(0);
  const duck = await exceptBothWays(
    `(SELECT epoch_us(time) AS time, auction, bidder, price, channel, url, extra FROM read_parquet(${list(files)}))`,
    REF(reference),
  );
  expect(duck).toEqual({ missing: 0, extra: 0, rows: duck.rows });

  // pyarrow reads every file on its own and writes what it read as JSON lines (time as µs).
  const csv = join(scratch, `pyarrow-${Date.now()}.jsonl`);
  const script = `
import sys, json, pyarrow as pa, pyarrow.parquet as pq
files = json.loads(sys.argv[1])
tables = []
for f in files:
    t = pq.read_table(f)
    assert t.schema.field('time').type == pa.timestamp('us', tz='UTC'), t.schema
    tables.append(t)
t = pa.concat_tables(tables)
t = t.set_column(0, 'time', t.column('time').cast(pa.int64()))
with open(sys.argv[2], 'w') as out:
    for row in t.to_pylist():
        out.write(json.dumps(row) + '\\n')
print(t.num_rows)
`;
  const py = Bun.spawnSync([PYTHON, "-c", script, JSON.stringify(files), csv]);
  expect(py.stderr.toString()).toBe("");
  expect(py.exitCode).toBe(0);
  const arrow = await exceptBothWays(
    `(SELECT * FROM read_json('${csv}', format = 'newline_delimited', columns = {time: 'BIGINT', auction: 'BIGINT', bidder: 'BIGINT', price: 'BIGINT', channel: 'VARCHAR', url: 'VARCHAR', extra: 'VARCHAR'}))`,
    REF(reference),
  );
  expect(arrow).toEqual({ missing: 0, extra: 0, rows: duck.rows });
  expect(Number(py.stdout.toString().trim())).toBe(duck.rows);
  return duck.rows;
}

/** Same for JSON-lines files (plain or gzip), read by DuckDB and by Python's json + gzip. */
export async function expectJsonEqualsReference(files: string[], reference: string, scratch: string): Promise<number> {
  expect(files.length).toBeGreaterThan(0);
  const duck = await exceptBothWays(
    `(SELECT epoch_us(CAST(time AS TIMESTAMPTZ)) AS time, auction, bidder, price, channel, url, extra
      FROM read_json(${list(files)}, columns = {time: 'VARCHAR', auction: 'BIGINT', bidder: 'BIGINT', price: 'BIGINT', channel: 'VARCHAR', url: 'VARCHAR', extra: 'VARCHAR'}, format = 'newline_delimited'))`,
    REF(reference),
  );
  expect(duck).toEqual({ missing: 0, extra: 0, rows: duck.rows });
  const script = `
import sys, json, gzip
n = 0
for f in json.loads(sys.argv[1]):
    opener = gzip.open if f.endswith('.gz') else open
    with opener(f, 'rt') as fh:
        for line in fh:
            json.loads(line); n += 1
print(n)
`;
  const py = Bun.spawnSync([PYTHON, "-c", script, JSON.stringify(files)]);
  expect(py.stderr.toString()).toBe("");
  expect(Number(py.stdout.toString().trim())).toBe(duck.rows);
  return duck.rows;
}
