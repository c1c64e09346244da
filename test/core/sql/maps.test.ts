/**
 * MAP columns through real jobs, against DuckDB: read from a table, indexed,
 * used as a GROUP BY key (so held in an aggregate's keyed state), built per
 * row and aggregated per window; and the encodings that carry maps between
 * processes and into checkpoints keep them as they are.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { encodeFrame, FrameKind, FrameReader } from "../../../core/cluster/frames.ts";
import { packSequence, unpackSequence } from "../../../core/state/file-format.ts";
import { duckSql, planError, prng, runSql, runnelTables, sameRows, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

const MINUTE = 60_000_000;
const T0 = Math.floor(1_700_000_000_000_000 / (60 * MINUTE)) * 60 * MINUTE;
const rand = prng(31);
const KEYS = ["a", "b", "c"];
const events: TableSpec = {
  name: "events",
  columns: [
    { name: "id", type: "BIGINT" },
    { name: "attrs", type: "MAP<TEXT, BIGINT>" },
    { name: "ts", type: "TIMESTAMP" },
  ],
  // Maps of 0 to 3 keys, some values NULL, some maps NULL.
  rows: Array.from({ length: 400 }, (_, i) => {
    const attrs = rand() < 0.05 ? null : KEYS.filter(() => rand() < 0.6).map((k) => [k, rand() < 0.1 ? null : Math.floor(rand() * 5)]);
    return [i, attrs, T0 + Math.floor((i * 4 * MINUTE) / 400)];
  }),
  watermark: "ts",
};

async function agree(q: string, duck = q, parallelism = 1) {
  const ours = await runSql(`${runnelTables([events])}\n${q};`, { parallelism });
  const theirs = await duckSql([events], duck);
  expect(theirs.length).toBeGreaterThan(0);
  expect(sameRows(ours.rows, theirs)).toBeNull();
  return ours;
}

describe("MAP columns in jobs agree with DuckDB", () => {
  test("indexing, map_extract, map_keys, map_values and cardinality per row", async () => {
    await agree("SELECT id, attrs['a'] AS a, map_extract(attrs, 'b') AS b, map_keys(attrs) AS k, map_values(attrs) AS v, cardinality(attrs) AS n, attrs FROM events");
  });

  test("GROUP BY a map and by one of its values, across two subtasks (maps as keyed state, hashed to partitions)", async () => {
    await agree("SELECT attrs, count(*) AS n FROM events GROUP BY attrs", undefined, 2);
    await agree("SELECT attrs['b'] AS b, count(*) AS n, sum(attrs['a']) AS s FROM events WHERE cardinality(attrs) > 0 GROUP BY attrs['b']", undefined, 2);
  });

  test("a map built per row and read in a windowed aggregate", async () => {
    await agree("SELECT id, MAP {'id': id, 'double': id * 2}['double'] AS d, MAP {'id': id} AS m FROM events WHERE id % 50 = 0");
    const ours = await runSql(
      `${runnelTables([events])}\nSELECT window.start AS ws, sum(MAP {'x': id}['x']) AS s, max(cardinality(attrs)) AS widest FROM events GROUP BY tumble(INTERVAL '1' MINUTE);`,
    );
    const theirs = await duckSql([events], `SELECT (ts // ${MINUTE}) * ${MINUTE} AS ws, sum(id) AS s, max(cardinality(attrs)) AS widest FROM events GROUP BY ws`);
    expect(sameRows(ours.rows, theirs)).toBeNull();
  });
});

describe("MAP values in checkpoints and between processes", () => {
  const row = [1, [["a", 1], ["b", null]], [[7, [["nested", true]]]]];
  test("a state file's MessagePack sequence keeps a map's pairs", () => {
    expect(unpackSequence(packSequence([row, [2, [], null]]))).toEqual([row, [2, [], null]]);
  });

  test("the exchange's frames keep a map's pairs", () => {
    const got: unknown[] = [];
    new FrameReader((_k, _c, body) => got.push(body)).push(encodeFrame(FrameKind.Data, 3, { rows: [row], times: [T0] }));
    expect(got).toEqual([{ rows: [row], times: [T0] }]);
  });
});

describe("MAP refusals", () => {
  test("a map of other types than the sink column's says how to build it", async () => {
    const err = await planError(
      "CREATE TABLE src (k BIGINT) WITH (connector = 'test_rows', dataset = 'none');\nCREATE TABLE out (m MAP<TEXT, INT>) WITH (connector = 'blackhole');\nINSERT INTO out SELECT MAP {'a': k} FROM src;",
    );
    expect(err.message).toMatch(/is MAP<TEXT, INT> but the query gives MAP<TEXT, BIGINT>.*build it from keys and values of those types \(MAP \{'k': CAST\(v AS T\)\}\)/);
    expect(err.line).toBe(3);
  });


  test("keys of a nested type", async () => {
    const err = await planError("CREATE TABLE x (m MAP<ARRAY<INT>, INT>) WITH (connector = 'test_rows', dataset = 'none');\nSELECT m FROM x;");
    expect(err.message).toMatch(/MAP keys of type INT\[\] are not supported; use TEXT or a number/);
    expect(err.at).toStartWith("ARRAY<INT>");
  });
});
