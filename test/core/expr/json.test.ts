/**
 * JSON operators and functions return what Arroyo returns: `->`, `->>` and
 * json_get* with the semantics of datafusion-functions-json (the crate Arroyo
 * registers; expectations from its README and tests), Arroyo's own
 * extract_json family with serde_json / serde_json_path semantics (RFC 9535).
 */
import { describe, expect, test } from "bun:test";
import type { Row } from "../../../core/plugin-api/index.ts";
import { EXPR_ROW, evalSql, exprError } from "../../kit/expr.ts";

const DOC = '{"a": {"b": [10, 20]}, "name": "x", "n": -42, "f": 1.50, "s": "123", "t": true, "z": null, "e": {}, "q": "say \\"hi\\""}';
const row = (j: string | null): Row => EXPR_ROW.map((v, i) => (i === 5 ? j : v));
const on = (expr: string, j: string | null = DOC) => evalSql(expr, row(j));

describe("-> and ->>", () => {
  test("-> gives the value's JSON text, ->> text; a missing key or JSON null gives NULL", () => {
    expect(on("j->'name'")).toBe('"x"');
    expect(on("j->>'name'")).toBe("x");
    expect(on("j->'a'")).toBe('{"b": [10, 20]}');
    expect(on("j->>'a'")).toBe('{"b": [10, 20]}');
    expect(on("j->'a'->'b'->1")).toBe("20");
    expect(on("j->'a'->'b'->>0")).toBe("10");
    expect(on("j->'missing'")).toBe(null);
    expect(on("j->'z'")).toBe(null);
    expect(on("j->>'z'")).toBe(null);
    expect(on("j->>'q'")).toBe('say "hi"');
    expect(on("j->'q'")).toBe('"say \\"hi\\""');
  });

  test("a key on an array, an index on an object and a negative index find nothing", () => {
    expect(on("j->'a'->'b'->'x'")).toBe(null);
    expect(on("j->0")).toBe(null);
    expect(on("j->'a'->'b'->-1")).toBe(null);
    expect(on("j->'a'->'b'->5")).toBe(null);
  });

  test("text is read only as far as the path needs; the first of duplicate keys wins", () => {
    expect(on("j->>'a'", '{"a": 1, "b": oops')).toBe("1");
    expect(on("j->>'a'", '{"a": 1, "a": 2}')).toBe("1");
    expect(on("j->>'b'", '{"a": oops, "b": 1}')).toBe(null);
    expect(on("j->>'a'", "not json")).toBe(null);
    expect(on("j->>'a'", null)).toBe(null);
  });

  test("works on TEXT columns as well as JSON, with a key or index from a column", () => {
    expect(evalSql(`'{"k": [1, 2]}'->'k'->>(i - 6)`)).toBe("2");
    expect(evalSql(`'{"Hello": 5}'->>s`)).toBe("5");
  });

  test("comparing -> (JSON) with text is refused, naming ->>", () => {
    expect(exprError("j->'name' = 'x'").message).toContain("compare text with `->>`");
    expect(on("j->>'name' = 'x'")).toBe(true);
  });

  test("the ? operator is json_contains", () => {
    expect(on("j ? 'z'")).toBe(true);
    expect(on("j ? 'zz'")).toBe(false);
  });
});

describe("the json_get family", () => {
  test("json_get_str, json_get_int, json_get_float, json_get_bool read only their own kind", () => {
    expect(on("json_get_str(j, 'name')")).toBe("x");
    expect(on("json_get_str(j, 'n')")).toBe(null);
    expect(on("json_get_int(j, 'n')")).toBe(-42); // negative numbers too (Arroyo's crate version returned NULL: an upstream bug, fixed since)
    expect(on("json_get_int(j, 'f')")).toBe(null);
    expect(on("json_get_int(j, 's')")).toBe(null); // a string holding digits is not a number
    expect(on("json_get_float(j, 'f')")).toBe(1.5);
    expect(on("json_get_float(j, 'n')")).toBe(-42);
    expect(on("json_get_bool(j, 't')")).toBe(true);
    expect(on("json_get_bool(j, 'name')")).toBe(null);
    expect(on("json_get_int(j, 'a', 'b', 1)")).toBe(20);
  });

  test("json_get_json keeps JSON null; json_as_text gives NULL for it", () => {
    expect(on("json_get_json(j, 'z')")).toBe("null");
    expect(on("json_get_json(j, 'a', 'b')")).toBe("[10, 20]");
    expect(on("json_as_text(j, 'z')")).toBe(null);
    expect(on("json_as_text(j, 'f')")).toBe("1.50");
  });

  test("json_length, json_contains, json_object_keys, json_get_array", () => {
    expect(on("json_length(j)")).toBe(9);
    expect(on("json_length(j, 'a', 'b')")).toBe(2);
    expect(on("json_length(j, 'e')")).toBe(0);
    expect(on("json_length(j, 'name')")).toBe(null);
    expect(on("json_contains(j, 'z')")).toBe(true);
    expect(on("json_contains(j, 'a', 'c')")).toBe(false);
    expect(on("json_contains(j, 'a')", null)).toBe(false); // never NULL
    expect(on("json_object_keys(j, 'a')")).toEqual(["b"]);
    expect(on("json_get_array(j, 'a', 'b')")).toEqual(["10", "20"]);
  });

  test("casting json_get reads the value as that type (the crate's rewrite), not its JSON text", () => {
    expect(on("CAST(j->'n' AS BIGINT)")).toBe(-42);
    expect(on("(j->'name')::TEXT")).toBe("x");
    expect(on("CAST(j->'s' AS BIGINT)")).toBe(null);
    expect(on("CAST(j->'f' AS DOUBLE)")).toBe(1.5);
    expect(on("CAST(j->'t' AS BOOLEAN)")).toBe(true);
    expect(on("CAST(j->'a'->'b'->0 AS INT)")).toBe(10);
  });

  test("arguments are checked: a JSON or TEXT value, then keys or indexes", () => {
    expect(exprError("json_get_int(i, 'a')").message).toContain("takes TEXT as argument 1");
    expect(exprError("json_get(j, 1.5)").message).toContain("a TEXT key or an integer index");
  });
});

describe("Arroyo's JSONPath functions", () => {
  test("extract_json gives every match as serde_json text: compact, keys in order, floats as 1.0", () => {
    expect(on("extract_json(j, '$.a.b[*]')")).toEqual(["10", "20"]);
    expect(on("extract_json(j, '$.a')")).toEqual(['{"b":[10,20]}']);
    expect(on("extract_json(j, '$.f')")).toEqual(["1.5"]);
    expect(on("extract_json(j, '$.missing')")).toEqual([]);
    expect(on("extract_json(j, '$.x')", '{"x": [1.0, 2e3, -0.5]}')).toEqual(["[1.0,2000.0,-0.5]"]);
    expect(on("extract_json(j, '$')", '{"b": 1, "a": 2, "1": 3}')).toEqual(['{"b":1,"a":2,"1":3}']);
    expect(on("extract_json(j, '$.a')", '{"a": 1, "b": oops')).toBe(null); // the whole document must be JSON
  });

  test("extract_json_string gives the first match only if it is a string", () => {
    expect(on("extract_json_string(j, '$.name')")).toBe("x");
    expect(on("extract_json_string(j, '$.n')")).toBe(null);
    expect(on("extract_json_string(j, '$.a')")).toBe(null);
    expect(on("extract_json_string(j, '$.missing')")).toBe(null);
  });

  test("get_first_json_object gives the first match as JSON text", () => {
    expect(on("get_first_json_object(j, '$.a.b')")).toBe("[10,20]");
    expect(on("get_first_json_object(j, '$.name')")).toBe('"x"');
    expect(on("get_first_json_object(j, '$.z')")).toBe("null");
    expect(on("get_first_json_object(j, '$.missing')")).toBe(null);
  });

  test("RFC 9535 paths: bracketed names, negative indexes, slices, wildcards, descendants in document order", () => {
    const arr = '{"arr": [0, 1, 2, 3, 4], "k y": {"a": 1}, "x": {"a": 2}, "a": 3}';
    expect(on("extract_json(j, '$.arr[-1]')", arr)).toEqual(["4"]);
    expect(on("extract_json(j, '$.arr[1:3]')", arr)).toEqual(["1", "2"]);
    expect(on("extract_json(j, '$.arr[::-2]')", arr)).toEqual(["4", "2", "0"]);
    expect(on("extract_json(j, '$.arr[0,2]')", arr)).toEqual(["0", "2"]);
    expect(on(`extract_json(j, '$[''k y''].a')`, arr)).toEqual(["1"]);
    expect(on("extract_json(j, '$..a')", arr)).toEqual(["3", "1", "2"]);
  });

  test("the path must be a valid constant; filters are refused", () => {
    expect(exprError("extract_json(j, s)").message).toContain("needs the JSON path as a constant");
    expect(exprError("extract_json(j, 'a.b')").message).toContain("a path starts with $");
    expect(exprError("extract_json(j, '$.a[?(@.b > 1)]')").message).toContain("filter expressions");
  });
});
