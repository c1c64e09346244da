/**
 * The Parquet encoder on its own: every SQL type (with NULLs), every codec,
 * and a file finished by a second encoder from the first one's checkpointed
 * state, read by DuckDB and by pyarrow.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { field, t, type Field, type Row } from "../../core/plugin-api/index.ts";
import { ParquetFileEncoder } from "../../plugins/format-parquet/encoder.ts";
import { runCli, tempDir, writeSql } from "../kit/cli.ts";
import { duckQuery } from "../kit/duckdb.ts";
import { PYTHON } from "../kit/s3.ts";

setDefaultTimeout(60_000);

const dir = tempDir("runnel-parquet-");

const FIELDS: Field[] = [
  field("b", t.boolean()),
  field("i", t.int()),
  field("l", t.bigint(), false),
  field("f", t.float()),
  field("d", t.double()),
  field("s", t.string()),
  field("j", t.json()),
  field("ts", t.timestamp()),
  field("iv", t.interval()),
  field("by", t.bytes()),
  field("arr", t.array(t.bigint())),
  field("st", t.struct([field("x", t.int()), field("y", t.string())])),
];

function row(k: number): Row {
  const nul = k % 5 === 3;
  return [
    nul ? null : k % 2 === 0,
    nul ? null : k * 7 - 1000,
    -(2 ** 53 - 1) + k * 1_000_003, // large 64-bit values, negative and positive
    nul ? null : k / 4,
    nul ? null : k / 3,
    nul ? null : `s-${k}-ünï-😀`,
    nul ? null : `{"k":${k}}`,
    nul ? null : 1_704_067_200_000_000 + k * 1_000_001,
    nul ? null : k * 60_000_000,
    nul ? null : new Uint8Array([k & 255, 0, 255]),
    nul ? null : [k, k + 1],
    nul ? null : { x: k, y: `y${k}` },
  ];
}

const ROWS = 2500;

/** Writes ROWS rows in 3 row groups; the footer comes from a second encoder restored from JSON state. */
function writeResumed(codec: "UNCOMPRESSED" | "SNAPPY" | "GZIP" | "ZSTD"): string {
  const first = new ParquetFileEncoder(FIELDS, { codec });
  const bytes: Buffer[] = [];
  for (let k = 0; k < ROWS; k++) {
    first.add(row(k));
    if (k === 999 || k === 1999) bytes.push(first.flushRowGroup()!);
  }
  bytes.push(first.flushRowGroup()!);
  const state = JSON.parse(JSON.stringify(first.state()));
  const second = new ParquetFileEncoder(FIELDS, { codec }, state);
  bytes.push(second.footer());
  const file = join(dir, `${codec}.parquet`);
  writeFileSync(file, Buffer.concat(bytes));
  return file;
}

describe("parquet encoder", () => {
  for (const codec of ["UNCOMPRESSED", "SNAPPY", "GZIP", "ZSTD"] as const) {
    test(`${codec}: every type and NULL reads back equal in DuckDB and pyarrow, footer written from checkpointed state`, async () => {
      const file = writeResumed(codec);
      const rows = await duckQuery(`SELECT b, i, l, f, d, s, j, epoch_us(ts) AS ts, iv, hex("by") AS "by", arr, st FROM read_parquet('${file}')`);
      expect(rows.length).toBe(ROWS);
      for (let k = 0; k < ROWS; k++) {
        const e = row(k);
        const a = rows[k]!;
        const big = (v: unknown) => (v === null ? null : BigInt(v as number));
        expect([a.b, a.i, big(a.l as number), a.f, a.d, a.s, a.j, a.ts === null ? null : BigInt(a.ts as bigint), a.iv === null ? null : BigInt(a.iv as bigint)]).toEqual([
          e[0], e[1], BigInt(e[2] as number), e[3], e[4], e[5], e[6], big(e[7] as number | null), big(e[8] as number | null),
        ]);
        expect(a.by).toBe(e[9] === null ? null : Buffer.from(e[9] as Uint8Array).toString("hex").toUpperCase());
        expect(a.arr === null ? null : JSON.parse(a.arr as string)).toEqual(e[10]);
        expect(a.st === null ? null : JSON.parse(a.st as string)).toEqual(e[11]);
      }
      const py = Bun.spawnSync([
        PYTHON,
        "-c",
        `
import sys, json, pyarrow.parquet as pq
f = pq.ParquetFile(sys.argv[1])
t = f.read()
st = f.metadata.row_group(1).column(7).statistics
assert st.has_min_max and st.min.isoformat() == "2024-01-01T00:16:40.001000+00:00", st
assert f.metadata.row_group(0).column(2).statistics.min == ${row(0)[2]}, f.metadata.row_group(0).column(2).statistics
assert not f.metadata.row_group(0).column(5).statistics.has_min_max
print(json.dumps({"rows": t.num_rows, "groups": f.metadata.num_row_groups, "codec": f.metadata.row_group(0).column(0).compression,
  "types": [str(x) for x in t.schema.types], "l": t.column("l").to_pylist()[:3], "s_nulls": t.column("s").null_count,
  "ts": [x.isoformat() if x else None for x in t.column("ts").to_pylist()[:2]], "f": t.column("f").to_pylist()[:3]}))
`,
        file,
      ]);
      expect(py.stderr.toString()).toBe("");
      expect(JSON.parse(py.stdout.toString())).toEqual({
        rows: ROWS,
        groups: 3,
        codec,
        types: ["bool", "int32", "int64", "float", "double", "string", "string", "timestamp[us, tz=UTC]", "int64", "binary", "string", "string"],
        l: [row(0)[2], row(1)[2], row(2)[2]],
        s_nulls: ROWS / 5,
        ts: ["2024-01-01T00:00:00+00:00", "2024-01-01T00:00:01.000001+00:00"],
        f: [0, 0.25, 0.5],
      });
    });
  }

  test("a file with no row is still a valid Parquet file", async () => {
    const file = join(dir, "empty.parquet");
    writeFileSync(file, new ParquetFileEncoder(FIELDS, { codec: "ZSTD" }).footer());
    expect(await duckQuery(`SELECT count(*) AS n FROM read_parquet('${file}')`)).toEqual([{ n: 0n }]);
  });

  test("NULL in a NOT NULL column is an error naming the column", () => {
    const enc = new ParquetFileEncoder([field("id", t.bigint(), false)], { codec: "ZSTD" });
    enc.add([null]);
    expect(() => enc.flushRowGroup()).toThrow("column `id` is NOT NULL but a row has NULL there");
  });

  test("a record sink given format 'parquet' says to use the filesystem connector", async () => {
    const sql = writeSql(
      dir,
      `CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '0', message_count = '100');
CREATE TABLE out (price BIGINT) WITH (connector = 'single_file', path = '${dir}/out.txt', format = 'parquet', type = 'sink');
INSERT INTO out SELECT bid.price FROM nexmark WHERE bid IS NOT NULL;`,
      "record-sink.sql",
    );
    const r = await runCli(["run", sql, "--state-dir", join(dir, "state"), "--quiet"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("format 'parquet' reads and writes whole files; use it with connector 'filesystem'");
  });
});
