/**
 * MAP values and functions against DuckDB, whose MAP functions have
 * DataFusion's semantics: literals (`MAP {k: v}`, map(keys, values),
 * make_map), `m[k]`, map_extract / element_at, map_keys, map_values,
 * cardinality; and what is refused, where and why.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { evalSql, exprError } from "../../kit/expr.ts";

let instance: DuckDBInstance;
let duck: DuckDBConnection;
beforeAll(async () => {
  instance = await DuckDBInstance.create(":memory:");
  duck = await instance.connect();
});
afterAll(() => {
  duck.closeSync();
  instance.closeSync();
});

/** DuckDB's value of `expr`, maps as [key, value] pairs and integers as numbers. */
async function duckValue(expr: string): Promise<unknown> {
  const rows = (await duck.runAndReadAll(`SELECT ${expr} AS v`)).getRowObjectsJS();
  const plain = (v: unknown): unknown => {
    if (typeof v === "bigint") return Number(v);
    if (Array.isArray(v)) return v.map((e) => (e && typeof e === "object" && !Array.isArray(e) && "key" in e ? [plain(e.key), plain(e.value)] : plain(e)));
    return v ?? null;
  };
  return plain(rows[0]!.v);
}

// [Runnel's spelling, DuckDB's spelling when it differs]
const CASES: [string, string?][] = [
  ["MAP {'a': 1, 'b': 2}"],
  ["MAP {'a': 1, 'b': NULL}"],
  ["map(['x', 'y', 'z'], [1.5, 2, NULL])"],
  ["map([3, 1, 2], ['c', 'a', 'b'])"],
  ["make_map('k', 10, 'j', 20)", "MAP {'k': 10, 'j': 20}"],
  ["MAP {'a': 1, 'b': 2}['b']"],
  ["MAP {'a': 1, 'b': 2}['z']"],
  ["map([1, 2], ['p', 'q'])[2]"],
  ["map_extract(MAP {'a': 1, 'b': 2}, 'a')"],
  ["map_extract(MAP {'a': 1, 'b': 2}, 'missing')"],
  ["element_at(map([10, 20], [true, false]), 20)"],
  ["map_keys(MAP {'b': 1, 'a': 2})"],
  ["map_values(MAP {'b': 1, 'a': NULL})"],
  ["cardinality(MAP {'b': 1, 'a': 2, 'c': 3})"],
  ["cardinality(map(['a'], [NULL]))"],
  ["map_extract(MAP {'a': 1}, NULL)"],
  ["cardinality(NULL)", "cardinality(CAST(NULL AS MAP(VARCHAR, INT)))"],
  ["map_keys(MAP {'a': map(['x'], [1])})"],
  ["MAP {'a': map(['x'], [1])}['a']['x']"],
  ["MAP {'n': [1, 2, 3]}['n'][2]"],
];

describe("MAP functions agree with DuckDB", () => {
  test.each(CASES.map(([ours, theirs]) => [ours, theirs ?? ours]))("%s", async (ours, theirs) => {
    expect(evalSql(ours)).toEqual(await duckValue(theirs));
  });

  test("a map built from a row's columns", async () => {
    // i = 7, s = 'Hello' in the fixture row.
    expect(evalSql("MAP {s: i, 'other': i * 2}")).toEqual(await duckValue("MAP {'Hello': 7, 'other': 14}"));
    expect(evalSql("element_at(map([s], [i]), s)")).toEqual([7]);
  });
});

describe("MAP refusals", () => {
  test("a repeated key stops the row, as DataFusion's map() does", () => {
    expect(() => evalSql("map(['a', 'a'], [1, 2])")).toThrow(/the key "a" is given twice; map keys must be unique/);
    expect(() => evalSql("map(['a', NULL], [1, 2])")).toThrow(/a map key cannot be NULL/);
    expect(() => evalSql("map(['a', 'b'], [1])")).toThrow(/2 keys but 1 values/);
  });

  test("a key of another type than the map's, at the key", () => {
    const err = exprError("map_extract(MAP {'a': 1}, 1)");
    expect(err.message).toMatch(/the map's keys are TEXT, the key given is BIGINT; cast it/);
    expect(err.column).toBe(8);
  });

  test("CAST of a map and indexing a non-map say what to write", () => {
    expect(exprError("CAST(MAP {'a': 1} AS TEXT)").message).toMatch(/CAST\(MAP<TEXT, BIGINT> AS TEXT\) is not supported/);
    expect(exprError("s['a']").message).toMatch(/only arrays and maps can be indexed/);
  });
});
