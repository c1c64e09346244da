/**
 * Array, conditional and struct functions: each call evaluated by Runnel and by
 * DuckDB's equivalent (DuckDB names most of them list_*), on constants and on
 * the values of a row; where DuckDB differs from DataFusion by design, the
 * expected value comes from DataFusion's documentation and is marked so.
 */
import { describe, expect, test } from "bun:test";
import { duckQuery } from "../../kit/duckdb.ts";
import { evalSql, exprError } from "../../kit/expr.ts";

const normalize = (v: unknown): unknown =>
  typeof v === "bigint" ? Number(v) : Array.isArray(v) ? v.map(normalize) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x)])) : (v ?? null);

/** [Runnel expression, DuckDB expression]. */
const SAME: [string, string][] = [
  ["array_append([1, 2], 3)", "list_append([1, 2], 3)"],
  ["list_append([1, 2], NULL)", "list_append([1, 2], NULL)"],
  ["array_prepend(0, [1, 2])", "list_prepend(0, [1, 2])"],
  ["array_concat([1], [2, 3], [4])", "list_concat(list_concat([1], [2, 3]), [4])"],
  ["array_cat(['a'], ['b'])", "list_cat(['a'], ['b'])"],
  ["array_distinct([3, 1, 3, 2, 1])", "list_sort(list_distinct([3, 1, 3, 2, 1]))"],
  ["array_has_all([1, 2, 3], [3, 1])", "list_has_all([1, 2, 3], [3, 1])"],
  ["array_has_any([1, 2, 3], [7, 3])", "list_has_any([1, 2, 3], [7, 3])"],
  ["array_has_any([1, 2, 3], [7, 8])", "list_has_any([1, 2, 3], [7, 8])"],
  ["array_extract([10, 20, 30], 2)", "list_extract([10, 20, 30], 2)"],
  ["array_extract([10, 20, 30], -1)", "list_extract([10, 20, 30], -1)"],
  ["array_extract([10, 20, 30], 5)", "list_extract([10, 20, 30], 5)"],
  ["array_to_string([1, 2, 3], '-')", "array_to_string([1, 2, 3], '-')"],
  ["array_position([1, 2, 3, 2], 2)", "list_position([1, 2, 3, 2], 2)"],
  ["array_position([1, 2, 3], 9)", "list_position([1, 2, 3], 9)"],
  ["array_reverse([1, 2, 3])", "list_reverse([1, 2, 3])"],
  ["array_slice([1, 2, 3, 4, 5], 2, 4)", "list_slice([1, 2, 3, 4, 5], 2, 4)"],
  ["array_slice([1, 2, 3, 4, 5], -2, 5)", "list_slice([1, 2, 3, 4, 5], -2, 5)"],
  ["array_slice([1, 2, 3, 4, 5], 1, 5, 2)", "list_slice([1, 2, 3, 4, 5], 1, 5, 2)"],
  ["array_sort([3, 1, 2])", "list_sort([3, 1, 2])"],
  ["array_sort([3, 1, 2], 'DESC')", "list_sort([3, 1, 2], 'DESC')"],
  ["array_sort(['b', NULL, 'a'], 'ASC', 'NULLS LAST')", "list_sort(['b', NULL, 'a'], 'ASC', 'NULLS LAST')"],
  ["array_max([3, 9, 2])", "list_max([3, 9, 2])"],
  ["array_min([3, 9, 2])", "list_min([3, 9, 2])"],
  ["flatten([[1, 2], [3]])", "flatten([[1, 2], [3]])"],
  ["generate_series(1, 10, 3)", "generate_series(1, 10, 3)"],
  ["generate_series(5, 1, -2)", "generate_series(5, 1, -2)"],
  ["range(1, 5)", "range(1, 5)"],
  ["range(4)", "range(4)"],
  ["array_repeat('x', 3)", "list_resize(['x'], 3, 'x')"],
  ["array_resize([1, 2], 4, 0)", "list_resize([1, 2], 4, 0)"],
  ["string_to_array('a,b,c', ',')", "string_split('a,b,c', ',')"],
  ["make_array(1, 2, 3)", "[1, 2, 3]"],
  ["array_length(make_array('a', 'b'))", "len(['a', 'b'])"],
  ["cardinality([1, 2, 3])", "len([1, 2, 3])"],
  ["array_union([1, 2, 3], [3, 4])", "list_sort(list_distinct(list_concat([1, 2, 3], [3, 4])))"],
  ["array_intersect([1, 2, 3, 4], [5, 3, 4])", "list_sort(list_intersect([1, 2, 3, 4], [5, 3, 4]))"],
  ["array_empty(make_array())", "len([]) = 0"],
  ["nvl(NULL, 2)", "coalesce(NULL, 2)"],
  ["ifnull(1, 2)", "ifnull(1, 2)"],
  ["nvl2(NULL, 'a', 'b')", "CASE WHEN NULL IS NOT NULL THEN 'a' ELSE 'b' END"],
  ["nvl2(i, 'a', 'b')", "CASE WHEN 7 IS NOT NULL THEN 'a' ELSE 'b' END"],
  ["named_struct('a', i, 'b', s)", "{'a': 7, 'b': 'Hello'}"],
];

/** Where DataFusion's documented result is what counts (DuckDB has no such function or differs by design). */
const DATAFUSION: [string, unknown][] = [
  // Runnel's own order for a union: first appearance (DataFusion's docs: [1, 2, 3, 4, 5, 6]).
  ["array_union([1, 2, 3, 4], [5, 6, 3, 4])", [1, 2, 3, 4, 5, 6]],
  ["array_except([1, 2, 3, 4], [5, 6, 3, 4])", [1, 2]],
  ["array_remove([1, 2, 2, 3, 2, 1, 4], 2)", [1, 2, 3, 2, 1, 4]],
  ["array_remove_n([1, 2, 2, 3, 2, 1, 4], 2, 2)", [1, 3, 2, 1, 4]],
  ["array_remove_all([1, 2, 2, 3, 2, 1, 4], 2)", [1, 3, 1, 4]],
  ["array_replace([1, 2, 2, 3, 2, 1, 4], 2, 5)", [1, 5, 2, 3, 2, 1, 4]],
  ["array_replace_n([1, 2, 2, 3, 2, 1, 4], 2, 5, 2)", [1, 5, 5, 3, 2, 1, 4]],
  ["array_replace_all([1, 2, 2, 3, 2, 1, 4], 2, 5)", [1, 5, 5, 3, 5, 1, 4]],
  ["array_positions([1, 2, 2, 3, 1, 4], 2)", [2, 3]],
  ["array_pop_back([1, 2, 3])", [1, 2]],
  ["array_pop_front([1, 2, 3])", [2, 3]],
  ["array_dims([[1, 2, 3], [4, 5, 6]])", [2, 3]],
  ["array_ndims([[1, 2, 3], [4, 5, 6]])", 2],
  ["array_any_value([NULL, 1, 2])", 1],
  ["array_position([1, 2, 2, 3, 1, 4], 2, 3)", 3],
  ["string_to_array('abc##def', '##')", ["abc", "def"]],
  ["string_to_array('abc def', ' ', 'def')", ["abc", null]],
  ["array_append(make_array(), 1)", [1]],
  ["struct(1, 'x')", { c0: 1, c1: "x" }],
  ["get_field(named_struct('a', 1, 'b', 2), 'b')", 2],
];

describe("array, conditional and struct functions agree with DuckDB", () => {
  test.each(SAME)("%s", async (ours, theirs) => {
    const [row] = await duckQuery(`SELECT ${theirs} AS v`);
    expect(normalize(evalSql(ours))).toEqual(normalize(row!.v));
  });
});

describe("array functions follow DataFusion where DuckDB differs or lacks them", () => {
  test.each(DATAFUSION)("%s", (expr, expected) => {
    expect(normalize(evalSql(expr))).toEqual(expected);
  });
});

describe("array functions refuse what they cannot do, at planning", () => {
  test("elements of another type", () => {
    expect(exprError("array_append([1, 2], 'x')").message).toMatch(/does not fit the array's elements/);
    expect(exprError("array_concat([1], ['a'])").message).toMatch(/hold BIGINT and TEXT|hold .* and .*; cast one/);
  });
  test("named_struct needs constant names", () => {
    expect(exprError("named_struct(s, 1)").message).toMatch(/constant field name/);
  });
  test("a field the struct lacks", () => {
    expect(exprError("get_field(named_struct('a', 1), 'z')").message).toMatch(/no field 'z'; its fields are a/);
  });
});
