/**
 * The filesystem source end to end, through the real CLI: reading back what
 * the filesystem sink wrote (local Parquet and gzip JSON lines, S3 Parquet),
 * files written by independent writers (pyarrow, fastavro, Python's csv),
 * new files picked up while running, and kill -9 in the middle of files.
 * Results are checked against DuckDB and Python's own reading, never against
 * another Runnel run of the same reader.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { runCli, startJob, tempDir, waitUntil, writeSql } from "../../kit/cli.ts";
import { duckQuery } from "../../kit/duckdb.ts";
import { dropBuckets, freshBucket, PYTHON, s3Client, S3_ENDPOINT, S3_KEY, S3_SECRET } from "../../kit/s3.ts";
import { outputLines } from "../../kit/source-crash.ts";
import { bidsSql, expectJsonEqualsReference, referenceRows } from "./readback.ts";

setDefaultTimeout(120_000);

const EVENTS = 30_000;
const RATE = 20_000;
let dir: string;
let reference: string;

beforeAll(async () => {
  dir = tempDir("runnel-fs-source-");
  reference = await referenceRows(dir, EVENTS, RATE);
});
afterAll(async () => {
  await dropBuckets(s3Client());
  rmSync(dir, { recursive: true, force: true });
});

const BIDS = "time TIMESTAMP, auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, extra TEXT";
const s3Options = `'storage.aws_endpoint' = '${S3_ENDPOINT}', 'storage.aws_access_key_id' = '${S3_KEY}', 'storage.aws_secret_access_key' = '${S3_SECRET}'`;

let runs = 0;
async function run(sql: string, extra: string[] = []) {
  const name = `run-${runs++}`;
  const r = await runCli(["run", writeSql(dir, sql, `${name}.sql`), "--state-dir", join(dir, `${name}-state`), "--checkpoint-interval", "100ms", "--quiet", ...extra], { timeoutMs: 100_000 });
  expect(r.stderr).not.toContain("error");
  expect(r.code).toBe(0);
  return r;
}

/** Reads `sourceWith` back into a JSON-lines file and returns its path. */
async function readBack(sourceWith: string, columns = BIDS, select = "*", extra: string[] = [], outColumns = columns): Promise<string> {
  const out = join(dir, `back-${runs}.jsonl`);
  await run(
    `CREATE TABLE src (${columns}) WITH (${sourceWith}, type = 'source');
CREATE TABLE back (${outColumns}) WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO back SELECT ${select} FROM src;`,
    extra,
  );
  return out;
}

describe("round trip: what the filesystem sink wrote reads back", () => {
  test("local Parquet with row groups and files cut by checkpoints, at parallelism 2", async () => {
    const files = join(dir, "rt-parquet");
    await run(
      bidsSql({
        events: EVENTS,
        rate: RATE,
        sinkWith: `connector = 'filesystem', path = '${files}', format = 'parquet', 'parquet.row_group_size' = '3000', 'rolling_policy.file_size' = '150KB'`,
      }),
    );
    const out = await readBack(`connector = 'filesystem', path = '${files}', format = 'parquet'`, BIDS, "*", ["--parallelism", "2"]);
    expect(await expectJsonEqualsReference([out], reference, dir)).toBe(EVENTS - (await nonBids()));
  });

  test("local gzip JSON lines in time-partition directories, through a glob", async () => {
    const files = join(dir, "rt-json");
    await run(
      bidsSql({
        events: EVENTS,
        rate: RATE,
        sinkWith: `connector = 'filesystem', path = '${files}', format = 'json', compression = 'gzip', 'rolling_policy.file_size' = '100KB', 'partitioning.time_pattern' = 'second=%S'`,
      }),
    );
    const out = await readBack(`connector = 'filesystem', path = '${files}/second=*/*.json.gz', format = 'json'`);
    await expectJsonEqualsReference([out], reference, dir);
  });

  test("Parquet on the S3 emulator", async () => {
    const client = s3Client();
    const bucket = await freshBucket(client, "runnel-fs-src");
    await run(
      bidsSql({
        events: EVENTS,
        rate: RATE,
        sinkWith: `connector = 'filesystem', path = 's3://${bucket}/bids', format = 'parquet', 'parquet.row_group_size' = '4000', ${s3Options}`,
      }),
    );
    const out = await readBack(`connector = 'filesystem', path = 's3://${bucket}/bids', format = 'parquet', ${s3Options}`);
    await expectJsonEqualsReference([out], reference, dir);
  });
});

let nonBidCount: number | null = null;
async function nonBids(): Promise<number> {
  if (nonBidCount === null) {
    const [r] = await duckQuery(`SELECT count(*) AS n FROM read_json('${reference}', format = 'newline_delimited')`);
    nonBidCount = EVENTS - Number(r!.n);
  }
  return nonBidCount;
}

// ------------------------------------------------------------------ independent writers

/**
 * Python writes the same 5,000 rows as Parquet (pyarrow: dictionary pages,
 * snappy, several row groups, nanosecond and microsecond timestamps), Avro
 * (fastavro: deflate, many blocks), CSV (header in another column order,
 * quoted fields holding newlines and delimiters, empty vs "") and JSON lines,
 * plus `expected.jsonl` with timestamps as µs.
 */
const WRITE_FILES = `
import sys, json, csv, datetime, pyarrow as pa, pyarrow.parquet as pq, fastavro
out = sys.argv[1]
N = 5000
epoch = datetime.datetime(1970, 1, 1)
rows = []
for i in range(N):
    us = 1_700_000_000_000_000 + i * 1_000_003
    name = None if i % 7 == 0 else ('' if i % 11 == 0 else f'n{i % 13}, "q"\\nline' if i % 5 == 0 else f'n{i % 13}')
    rows.append({'id': i, 'name': name, 'ts': us, 'x': None if i % 3 == 0 else i / 4})
with open(f'{out}/expected.jsonl', 'w') as f:
    for r in rows: f.write(json.dumps(r) + '\\n')
ts = [epoch + datetime.timedelta(microseconds=r['ts']) for r in rows]
t = pa.table({'x': pa.array([r['x'] for r in rows], pa.float64()), 'name': [r['name'] for r in rows], 'id': pa.array([r['id'] for r in rows], pa.int64()),
              'ts': pa.array(ts, pa.timestamp('ns')), 'extra': ['e'] * N})
pq.write_table(t.slice(0, 3000), f'{out}/parquet/a.parquet', row_group_size=700, compression='snappy')
pq.write_table(t.slice(3000).cast(pa.schema([('x', pa.float64()), ('name', pa.string()), ('id', pa.int64()), ('ts', pa.timestamp('us')), ('extra', pa.string())])), f'{out}/parquet/b.parquet', row_group_size=900)
schema = {'type': 'record', 'name': 'R', 'fields': [{'name': 'id', 'type': 'long'}, {'name': 'name', 'type': ['null', 'string']},
          {'name': 'ts', 'type': {'type': 'long', 'logicalType': 'timestamp-micros'}}, {'name': 'x', 'type': ['null', 'double']}]}
with open(f'{out}/avro/a.avro', 'wb') as f:
    fastavro.writer(f, schema, [dict(r, ts=r['ts']) for r in rows[:2500]], codec='deflate', sync_interval=4000)
with open(f'{out}/avro/b.avro', 'wb') as f:
    fastavro.writer(f, schema, [dict(r, ts=r['ts']) for r in rows[2500:]], codec='null', sync_interval=2000)
# NULL is an empty field, the empty string a quoted "" (written by hand: csv.writer writes both as nothing).
with open(f'{out}/csv/a.csv', 'w', newline='') as f:
    w = csv.writer(f, quoting=csv.QUOTE_MINIMAL)
    w.writerow(['ts', 'x', 'id', 'name'])
    for r in rows:
        tstext = (epoch + datetime.timedelta(microseconds=r['ts'])).strftime('%Y-%m-%dT%H:%M:%S.%fZ')
        name = '' if r['name'] is None else ('""' if r['name'] == '' else None)
        cells = [tstext, '' if r['x'] is None else repr(r['x']), str(r['id'])]
        if name is not None:
            f.write(','.join(cells) + ',' + name + '\\r\\n')
        else:
            w.writerow(cells + [r['name']])
`;

let writtenBy: string;
async function pythonFiles(): Promise<string> {
  if (writtenBy) return writtenBy;
  writtenBy = join(dir, "python");
  for (const d of ["parquet", "avro", "csv"]) mkdirSync(join(writtenBy, d), { recursive: true });
  const py = Bun.spawnSync([PYTHON, "-c", WRITE_FILES, writtenBy]);
  expect(py.stderr.toString()).toBe("");
  expect(py.exitCode).toBe(0);
  return writtenBy;
}

/** Runnel's output (ts as RFC 3339 text) equals Python's rows, as DuckDB compares them. */
async function expectPythonRows(out: string, expected: string) {
  const actual = `(SELECT id, name, epoch_us(CAST(ts AS TIMESTAMPTZ)) AS ts, x FROM read_json('${out}', format = 'newline_delimited', columns = {id: 'BIGINT', name: 'VARCHAR', ts: 'VARCHAR', x: 'DOUBLE'}))`;
  const ref = `(SELECT id, name, ts, x FROM read_json('${expected}', format = 'newline_delimited', columns = {id: 'BIGINT', name: 'VARCHAR', ts: 'BIGINT', x: 'DOUBLE'}))`;
  const [r] = await duckQuery(`
    WITH a AS ${actual}, r AS ${ref}
    SELECT (SELECT count(*) FROM (SELECT * FROM r EXCEPT ALL SELECT * FROM a)) AS missing,
           (SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM r)) AS extra,
           (SELECT count(*) FROM a) AS rows`);
  expect({ missing: Number(r!.missing), extra: Number(r!.extra), rows: Number(r!.rows) }).toEqual({ missing: 0, extra: 0, rows: 5000 });
}

describe("files of independent writers", () => {
  const COLS = "id BIGINT, name TEXT, ts TIMESTAMP, x DOUBLE";
  test("Parquet by pyarrow (dictionary, snappy, ns and µs timestamps, columns in another order)", async () => {
    const py = await pythonFiles();
    await expectPythonRows(await readBack(`connector = 'filesystem', path = '${py}/parquet', format = 'parquet'`, COLS), join(py, "expected.jsonl"));
  });

  test("Avro object container files by fastavro (deflate and null codecs, many blocks)", async () => {
    const py = await pythonFiles();
    await expectPythonRows(await readBack(`connector = 'filesystem', path = '${py}/avro', format = 'avro'`, COLS), join(py, "expected.jsonl"));
  });

  test("CSV by Python's csv module (header order, quoted newlines and commas, CRLF, NULL vs empty), zstd-compressed", async () => {
    const py = await pythonFiles();
    const zst = join(py, "csv-zst");
    mkdirSync(zst, { recursive: true });
    writeFileSync(join(zst, "a.csv.zst"), Bun.zstdCompressSync(await Bun.file(join(py, "csv", "a.csv")).bytes()));
    await expectPythonRows(await readBack(`connector = 'filesystem', path = '${py}/csv', format = 'csv'`, COLS), join(py, "expected.jsonl"));
    await expectPythonRows(await readBack(`connector = 'filesystem', path = '${zst}', format = 'csv'`, COLS), join(py, "expected.jsonl"));
  });
});

// ------------------------------------------------------------------ watching

/** Writes a JSON-lines file atomically (hidden name, then rename), as a producer should. */
function dropFile(into: string, name: string, ids: number[], mtimeSec?: number) {
  const tmp = join(into, `.${name}.tmp`);
  writeFileSync(tmp, ids.map((id) => JSON.stringify({ id, f: name })).join("\n") + "\n");
  if (mtimeSec !== undefined) utimesSync(tmp, mtimeSec, mtimeSec);
  renameSync(tmp, join(into, name));
}

describe("source.watch", () => {
  test("files added while the job runs are read, in modification-time order; names already read are not read again", async () => {
    const watched = join(dir, "watched");
    mkdirSync(watched, { recursive: true });
    // Names in the reverse of their modification times.
    dropFile(watched, "c.json", [0, 1], 1_000);
    dropFile(watched, "b.json", [2, 3], 2_000);
    const out = join(dir, "watched.jsonl");
    const sql = writeSql(
      dir,
      `CREATE TABLE src (id BIGINT, f TEXT) WITH (connector = 'filesystem', path = '${watched}', format = 'json', type = 'source',
         'source.watch' = 'true', 'source.watch_interval' = '200ms', 'source.order' = 'modification_time');
CREATE TABLE out (id BIGINT, f TEXT) WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out SELECT * FROM src;`,
      "watch.sql",
    );
    const job = startJob([sql, "--state-dir", join(dir, "watch-state"), "--checkpoint-interval", "100ms", "--quiet"]);
    try {
      await waitUntil("the first files", () => outputLines(out).length === 4, 30_000);
      dropFile(watched, "a.json", [4, 5, 6]);
      await waitUntil("the file added while running", () => outputLines(out).length === 7, 30_000);
      dropFile(join(watched), "z.json", [7]);
      await waitUntil("another one", () => outputLines(out).length === 8, 30_000);
    } finally {
      expect(await job.stop()).toBe(0);
    }
    const rows = outputLines(out).map((l) => JSON.parse(l));
    expect(rows.map((r) => r.id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(rows.map((r) => r.f)).toEqual(["c.json", "c.json", "b.json", "b.json", "a.json", "a.json", "a.json", "z.json"]);
  });
});

// ------------------------------------------------------------------ crashes

describe("kill -9 in the middle of files", () => {
  test("four formats, each in files of many checkpoints, killed three times at parallelism 2, then finished at 1: every record once", async () => {
    const root = join(dir, "crash");
    const N = 100_000; // per format, in two files each
    const script = `
import sys, json, gzip, csv, pyarrow as pa, pyarrow.parquet as pq, fastavro
root, N = sys.argv[1], int(sys.argv[2])
import os
for d in ['json', 'csv', 'parquet', 'avro']: os.makedirs(f'{root}/{d}', exist_ok=True)
def ids(fmt, half): base = {'json': 0, 'csv': 1, 'parquet': 2, 'avro': 3}[fmt] * N; return range(base + half * N // 2, base + (half + 1) * N // 2)
for h in range(2):
    with gzip.open(f'{root}/json/{h}.json.gz', 'wt') as f:
        for i in ids('json', h): f.write(json.dumps({'id': i, 'pad': 'x' * (i % 40)}) + '\\n')
    with open(f'{root}/csv/{h}.csv', 'w', newline='') as f:
        w = csv.writer(f); w.writerow(['id', 'pad'])
        for i in ids('csv', h): w.writerow([i, 'line\\nbreak' if i % 9 == 0 else 'x' * (i % 40)])
    pq.write_table(pa.table({'id': pa.array(list(ids('parquet', h)), pa.int64()), 'pad': ['p'] * (N // 2)}), f'{root}/parquet/{h}.parquet', row_group_size=2500)
    with open(f'{root}/avro/{h}.avro', 'wb') as f:
        fastavro.writer(f, {'type': 'record', 'name': 'R', 'fields': [{'name': 'id', 'type': 'long'}, {'name': 'pad', 'type': 'string'}]},
                        ({'id': i, 'pad': 'a'} for i in ids('avro', h)), codec='deflate', sync_interval=20000)
`;
    const py = Bun.spawnSync([PYTHON, "-c", script, root, String(N)]);
    expect(py.stderr.toString()).toBe("");
    const out = join(dir, "crash.jsonl");
    const table = (name: string, format: string) =>
      `CREATE TABLE ${name} (id BIGINT, pad TEXT) WITH (connector = 'filesystem', path = '${root}/${format}', format = '${format}', type = 'source');`;
    const sql = writeSql(
      dir,
      `${table("j", "json")}
${table("c", "csv")}
${table("p", "parquet")}
${table("a", "avro")}
CREATE TABLE out (id BIGINT) WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out SELECT id FROM j UNION ALL SELECT id FROM c UNION ALL SELECT id FROM p UNION ALL SELECT id FROM a;`,
      "crash.sql",
    );
    const state = join(dir, "crash-state");
    const args = (parallelism: number) => [sql, "--state-dir", state, "--checkpoint-interval", "50ms", "--parallelism", String(parallelism), "--quiet"];
    let before = 0;
    for (let round = 0; round < 3; round++) {
      const job = startJob(args(2));
      await waitUntil(`output to grow in round ${round}`, () => outputLines(out).length > before + 2_000, 60_000, 20);
      await job.kill();
      before = outputLines(out).length;
      expect(before).toBeLessThan(4 * N); // killed before the end, so the next run resumes inside files
    }
    const last = startJob(args(1));
    expect(await last.proc.exited).toBe(0);
    expect(last.stderr()).not.toContain("error");
    const ids = outputLines(out).map((l) => JSON.parse(l).id as number);
    const counts = new Map<number, number>();
    for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    const missing: number[] = [];
    for (let i = 0; i < 4 * N; i++) if (!counts.has(i)) missing.push(i);
    expect({ twice: twice.slice(0, 10), missing: missing.slice(0, 10), rows: ids.length }).toEqual({ twice: [], missing: [], rows: 4 * N });
  });
});

// ------------------------------------------------------------------ planning errors

describe("planning errors name the option", () => {
  async function validateFails(sourceWith: string, columns = "id BIGINT") {
    const sql = writeSql(
      dir,
      `CREATE TABLE src (${columns}) WITH (${sourceWith});
CREATE TABLE out (id BIGINT) WITH (connector = 'single_file', path = '${dir}/never.jsonl', format = 'json', type = 'sink');
INSERT INTO out SELECT id FROM src;`,
      `bad-${runs++}.sql`,
    );
    const r = await runCli(["validate", sql]);
    expect(r.code).not.toBe(0);
    return r.stderr;
  }
  const fsPath = () => `connector = 'filesystem', path = '${dir}'`;

  test("sink options on a source, and the other way round", async () => {
    expect(await validateFails(`${fsPath()}, format = 'json', 'rolling_policy.file_size' = '1MB'`)).toContain(
      "option 'rolling_policy.file_size' applies to sinks, but this table is read as a source; remove it",
    );
    expect(await validateFails(`${fsPath()}, format = 'json', compression = 'gzip'`)).toContain("(a source takes source.compression)");
    const sinkSql = writeSql(
      dir,
      `CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '0', message_count = '10');
CREATE TABLE out (auction BIGINT) WITH (connector = 'filesystem', path = '${dir}/s', format = 'json', 'source.watch' = 'true');
INSERT INTO out SELECT bid.auction FROM nexmark WHERE bid IS NOT NULL;`,
      "sink-with-source-option.sql",
    );
    const r = await runCli(["validate", sinkSql]);
    expect(r.stderr).toContain("option 'source.watch' applies to sources");
  });

  test("formats the source cannot frame, compression of whole-file formats, a bad regex, an unknown order", async () => {
    expect(await validateFails(`${fsPath()}, format = 'raw_bytes'`)).toContain("option 'format': the filesystem source reads 'json'");
    expect(await validateFails(`${fsPath()}, format = 'parquet', 'source.compression' = 'gzip'`)).toContain(
      "option 'source.compression' = 'gzip' is for record files; Parquet compresses its pages",
    );
    expect(await validateFails(`${fsPath()}, format = 'json', 'source.regex_pattern' = '(unclosed'`)).toContain("option 'source.regex_pattern'");
    expect(await validateFails(`${fsPath()}, format = 'json', 'source.order' = 'size'`)).toContain("'size' is not one of 'name', 'modification_time'");
  });

  test("a glob in a sink's path; Avro options that do not apply to container files; CSV's header outside files", async () => {
    const sinkSql = writeSql(
      dir,
      `CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '0', message_count = '10');
CREATE TABLE out (auction BIGINT) WITH (connector = 'filesystem', path = '${dir}/*.json', format = 'json');
INSERT INTO out SELECT bid.auction FROM nexmark WHERE bid IS NOT NULL;`,
      "sink-glob.sql",
    );
    expect((await runCli(["validate", sinkSql])).stderr).toContain("option 'path' of a sink is a directory");
    expect(await validateFails(`${fsPath()}, format = 'avro', 'avro.raw_datums' = 'true'`)).toContain(
      "connector 'filesystem' reads Avro object container files, whose header holds the writer's schema; remove option 'raw_datums'",
    );
    expect(await validateFails(`connector = 'kafka', topic = 't', bootstrap_servers = '127.0.0.1:1', format = 'csv', 'csv.header' = 'true'`)).toContain(
      "format 'csv': option 'header' applies to files",
    );
  });

  test("a missing directory fails the job naming the path option", async () => {
    const r = await runCli([
      "run",
      writeSql(
        dir,
        `CREATE TABLE src (id BIGINT) WITH (connector = 'filesystem', path = '${dir}/nowhere', format = 'json', type = 'source');
CREATE TABLE out (id BIGINT) WITH (connector = 'single_file', path = '${dir}/never2.jsonl', format = 'json', type = 'sink');
INSERT INTO out SELECT id FROM src;`,
        "missing-dir.sql",
      ),
      "--state-dir",
      join(dir, "missing-state"),
      "--quiet",
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`filesystem source: '${dir}/nowhere' (option 'path') does not exist`);
  });
});

// S3 objects added by another writer, read through a glob, with METADATA FROM 'path'.
describe("S3 source", () => {
  test("JSON lines under a prefix, picked by a glob, with the object's path as a column", async () => {
    const client = s3Client();
    const bucket = await freshBucket(client, "runnel-fs-glob");
    for (const [key, ids] of [["in/2024/a.json", [1, 2]], ["in/2024/b.txt", [99]], ["in/2025/c.json", [3]], ["in/_SUCCESS", [98]]] as const) {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: ids.map((id) => JSON.stringify({ id })).join("\n") }));
    }
    const out = await readBack(
      `connector = 'filesystem', path = 's3://${bucket}/in/*/*.json', format = 'json', ${s3Options}`,
      "id BIGINT, file TEXT METADATA FROM 'path'",
      "id, file",
      [],
      "id BIGINT, file TEXT",
    );
    const rows = outputLines(out).map((l) => JSON.parse(l));
    expect(rows).toEqual([
      { id: 1, file: "2024/a.json" },
      { id: 2, file: "2024/a.json" },
      { id: 3, file: "2025/c.json" },
    ]);
  });
});
