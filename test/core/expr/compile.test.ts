/** Compiled expressions follow SQL semantics: NULL propagation, three-valued logic, types. */
import { describe, expect, test } from "bun:test";
import { compileMap, SCALAR_FUNCTIONS } from "../../../core/expr/index.ts";
import { RowOp, type Row } from "../../../core/plugin-api/index.ts";
import { planSql } from "../../../core/sql/index.ts";
import { fixtureRegistry } from "../../kit/fixture-registry.ts";

const registry = fixtureRegistry();
const TABLE = `CREATE TABLE t (i BIGINT, f DOUBLE, s TEXT, b BOOLEAN, ts TIMESTAMP, j JSON, n BIGINT)
WITH (connector = 'single_file', path = '/x', format = 'json');`;
const T0 = Date.UTC(2024, 2, 15, 13, 45, 30, 250) * 1000; // 2024-03-15T13:45:30.250Z
const ROW: Row = [7, 2.5, "Hello", true, T0, '{"a": {"b": [10, 20]}, "name": "x"}', null];

function evaluate(select: string, row: Row = ROW, where?: string): unknown[] | null {
  const p = planSql(`${TABLE} SELECT ${select} FROM t${where ? ` WHERE ${where}` : ""};`, registry);
  const node = p.sinks[0]!.input;
  if (node.kind !== "map") throw new Error("expected a map");
  const out = compileMap(node.exprs, node.filter, 7)({ rows: [row], times: [T0] });
  return out.rows.length ? out.rows[0]! : null;
}
const one = (e: string, row?: Row) => evaluate(e, row)![0];

describe("operators", () => {
  test("arithmetic keeps integer types integral and NULL propagates", () => {
    expect(one("i / 2")).toBe(3);
    expect(one("f / 2")).toBe(1.25);
    expect(one("i % 4")).toBe(3);
    expect(one("i * f")).toBe(17.5);
    expect(one("i + n")).toBe(null);
    expect(one("i / 0")).toBe(null);
    expect(one("-i")).toBe(-7);
  });

  test("three-valued logic", () => {
    expect(one("n > 1 AND false")).toBe(false);
    expect(one("n > 1 AND true")).toBe(null);
    expect(one("n > 1 OR true")).toBe(true);
    expect(one("NOT (n > 1)")).toBe(null);
    expect(one("n IS NULL")).toBe(true);
    expect(one("i IS NOT NULL")).toBe(true);
  });

  test("IN, BETWEEN, LIKE, CASE, COALESCE, NULLIF", () => {
    expect(one("i IN (1, 7)")).toBe(true);
    expect(one("i NOT IN (1, 2)")).toBe(true);
    expect(one("i IN (1, n)")).toBe(null);
    expect(one("i BETWEEN 7 AND 8")).toBe(true);
    expect(one("s LIKE 'He%o'")).toBe(true);
    expect(one("s LIKE 'h%'")).toBe(false);
    expect(one("s ILIKE 'h_llo'")).toBe(true);
    expect(one("CASE WHEN i > 5 THEN 'big' ELSE 'small' END")).toBe("big");
    expect(one("CASE i WHEN 1 THEN 'one' WHEN 7 THEN 'seven' END")).toBe("seven");
    expect(one("coalesce(n, i, 0)")).toBe(7);
    expect(one("nullif(i, 7)")).toBe(null);
    expect(one("s || '!' || i")).toBe("Hello!7");
  });

  test("a filter keeps a row only when its condition is true", () => {
    expect(evaluate("i", ROW, "n > 1")).toBe(null);
    expect(evaluate("i", ROW, "i > 1")).toEqual([7]);
  });
});

describe("functions", () => {
  test("math and strings", () => {
    expect(one("abs(-3)")).toBe(3);
    expect(one("round(f)")).toBe(3);
    expect(one("round(3.14159, 2)")).toBe(3.14);
    expect(one("power(2, 10)")).toBe(1024);
    expect(one("lower(s)")).toBe("hello");
    expect(one("upper(s)")).toBe("HELLO");
    expect(one("length(s)")).toBe(5);
    expect(one("substr(s, 2, 3)")).toBe("ell");
    expect(one("replace(s, 'l', 'L')")).toBe("HeLLo");
    expect(one("concat(s, n, '!')")).toBe("Hello!");
    expect(one("split_part('a,b,c', ',', 2)")).toBe("b");
    expect(one("md5('abc')")).toBe("900150983cd24fb0d6963f7d28e17f72");
    expect(one("encode(sha256('abc'), 'hex')")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  test("date and time", () => {
    expect(one("date_trunc('hour', ts)")).toBe(Date.UTC(2024, 2, 15, 13) * 1000);
    expect(one("date_trunc('day', ts)")).toBe(Date.UTC(2024, 2, 15) * 1000);
    expect(one("date_trunc('month', ts)")).toBe(Date.UTC(2024, 2, 1) * 1000);
    expect(one("extract(hour FROM ts)")).toBe(13);
    expect(one("extract(minute FROM ts)")).toBe(45);
    expect(one("extract(second FROM ts)")).toBe(30.25);
    expect(one("to_timestamp(0)")).toBe(0);
    expect(one("to_timestamp('2024-03-15T13:45:30.250Z')")).toBe(T0);
    expect(one("ts + INTERVAL '1' HOUR")).toBe(T0 + 3600e6);
    expect(one("ts > '2024-01-01T00:00:00Z'")).toBe(true);
    expect(one("CAST(ts AS TEXT)")).toBe("2024-03-15T13:45:30.250"); // DataFusion's form: a TIMESTAMP has no zone
    const now = one("now()") as number;
    expect(Math.abs(now - Date.now() * 1000)).toBeLessThan(5e6);
  });

  test("JSON", () => {
    expect(one("j -> 'a'")).toBe('{"b": [10, 20]}'); // the value's text as written in the input
    expect(one("j ->> 'name'")).toBe("x");
    expect(one("extract_json(j, '$.a.b[*]')")).toEqual(["10", "20"]);
    expect(one("extract_json_string(j, '$.name')")).toBe("x");
    expect(one("get_first_json_object(j, '$.a.b')")).toBe("[10,20]");
    expect(one("extract_json_string(j, '$.missing')")).toBe(null);
  });

  test("casts", () => {
    expect(one("CAST(s AS TEXT)")).toBe("Hello");
    expect(one("CAST('42' AS BIGINT)")).toBe(42);
    expect(one("CAST(f AS INT)")).toBe(2);
    expect(one("CAST(i AS DOUBLE) / 2")).toBe(3.5);
    expect(one("i::text")).toBe("7");
  });
});

describe("updating streams", () => {
  test("a filter turns updates that cross it into inserts and deletes", () => {
    const p = planSql(`${TABLE} SELECT i FROM t WHERE i > 5;`, registry);
    const node = p.sinks[0]!.input as Extract<typeof p.sinks[0]["input"], { kind: "map" }>;
    const map = compileMap(node.exprs, node.filter, 7);
    const r = (i: number): Row => [i, null, null, null, null, null, null];
    const out = map({
      rows: [r(6), r(3), r(9), r(8)],
      times: [0, 0, 0, 0],
      ops: [RowOp.Update, RowOp.Update, RowOp.Update, RowOp.Delete],
      before: [r(2), r(7), r(10), null],
    });
    expect(out.ops).toEqual([RowOp.Insert, RowOp.Delete, RowOp.Update, RowOp.Delete]);
    expect(out.rows).toEqual([[6], [7], [9], [8]]);
    expect(out.before).toEqual([null, null, [10], null]);
  });
});

describe("a library call written twice runs once per row", () => {
  /** Counts the calls of library function `name` while `run` compiles and evaluates. */
  function counting<T>(name: string, run: () => T): { calls: number; result: T } {
    const f = SCALAR_FUNCTIONS.get(name)!;
    const { impl, bind } = f;
    let calls = 0;
    const counted = (g: (...args: any[]) => unknown) => (...args: unknown[]) => (calls++, g(...args));
    if (bind) f.bind = (args) => counted(bind(args));
    else f.impl = counted(impl!);
    try {
      return { result: run(), calls };
    } finally {
      f.impl = impl;
      f.bind = bind;
    }
  }

  test("q21's shape: lower() five times and regexp_match() twice, in the filter and the CASE, give the same rows", () => {
    const select = `s, CASE WHEN lower(s) = 'apple' THEN '0' WHEN lower(s) = 'google' THEN '1' WHEN lower(s) = 'hello' THEN '2' ELSE regexp_match(j, '"name": "([a-z]*)"')[1] END AS c`;
    const where = `regexp_match(j, '"name": "([a-z]*)"')[1] IS NOT NULL OR lower(s) IN ('apple', 'google')`;
    const rows: Row[] = [ROW, [1, 0, "Google", true, T0, '{"name": "y"}', null], [2, 0, "other", true, T0, '{"name": "z"}', null], [3, 0, "x", true, T0, "{}", null]];
    const lowered = counting("lower", () => rows.map((r) => evaluate(select, r, where)));
    expect(lowered.result).toEqual([["Hello", "2"], ["Google", "1"], ["other", "z"], null]);
    // One call a row (the 4th row is dropped by the filter after lowering once).
    expect(lowered.calls).toBe(4);
    expect(counting("regexp_match", () => rows.map((r) => evaluate(select, r, where))).calls).toBe(4);
  });

  test("a call under a branch not taken is not run, and runs where it is reached later in the row", () => {
    // split_part(s, '.', i - 7) fails for i = 7: only a branch that is taken may run it.
    expect(one("CASE WHEN i > 100 THEN split_part(s, '.', i - 7) END, CASE WHEN i > 100 THEN split_part(s, '.', i - 7) ELSE 'safe' END")).toBe(null);
    expect(evaluate("CASE WHEN i > 100 THEN upper(s) END, upper(s), coalesce(n, length(upper(s)))")).toEqual([null, "HELLO", 5]);
    expect(evaluate("CASE WHEN i > 100 THEN upper(s) END, upper(s)", [200, 0, "a", true, T0, "{}", null])).toEqual(["A", "A"]);
  });

  test("volatile calls are not shared: two random() values in one row differ", () => {
    expect(one("concat(random()) <> concat(random())")).toBe(true);
  });
});
