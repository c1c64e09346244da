/** String literals and quoted names reach the engine with SQL's escaping rules, not the parser's. */
import { describe, expect, test } from "bun:test";
import { planSql } from "../../../core/sql/index.ts";
import { evalRow, evalSql, EXPR_TABLE, exprError } from "../../kit/expr.ts";
import { fixtureRegistry } from "../../kit/fixture-registry.ts";

describe("string literals", () => {
  test("a doubled quote stands for one quote", () => {
    expect(evalRow(`'it''s' AS s, length('it''s') AS n`)).toEqual(["it's", 4]);
    expect(evalSql(`''''`)).toBe("'");
    expect(evalSql(`concat('a''', '''b')`)).toBe("a''b");
  });

  test("in every place a literal can stand: IN lists, LIKE patterns, CASE, function arguments", () => {
    expect(evalSql(`'o''k' IN ('x', 'o''k')`)).toBe(true);
    expect(evalSql(`'it''s' LIKE 'it''%'`)).toBe(true);
    expect(evalSql(`CASE WHEN true THEN 'y''all' END`)).toBe("y'all");
    expect(evalSql(`replace('a''b', '''', '"')`)).toBe('a"b');
  });

  test("backslashes in standard strings are kept as written", () => {
    expect(evalSql(String.raw`'a\nb'`)).toBe(String.raw`a\nb`);
    expect(evalSql(String.raw`length('\\')`)).toBe(2);
    expect(evalSql("'C:\\temp\\'")).toBe("C:\\temp\\");
  });

  test("E'...' strings read C-style escapes", () => {
    expect(evalSql(String.raw`E'a\nb'`)).toBe("a\nb");
    expect(evalSql(String.raw`E'tab\there'`)).toBe("tab\there");
    expect(evalSql(String.raw`E'it\'s'`)).toBe("it's");
    expect(evalSql(String.raw`E'back\\slash'`)).toBe(String.raw`back\slash`);
    expect(evalSql(String.raw`E'\x41\101\u00e9\U0001F600'`)).toBe("AAé😀");
    expect(evalSql(String.raw`e'it''s'`)).toBe("it's");
  });

  test("an invalid escape is refused where it is written", () => {
    const err = exprError(String.raw`E'\u12'`);
    expect(err.message).toContain("exactly 4 hex digits");
    expect(err.line).toBe(3);
    expect(err.column).toBe(10); // the backslash
  });

  test("interval texts and timestamps with quotes inside still parse", () => {
    expect(evalSql(`INTERVAL '2' MILLISECOND`)).toBe(2000);
    expect(evalSql(`CAST('2024-01-01T00:00:00Z' AS TIMESTAMP)`)).toBe(Date.UTC(2024, 0, 1) * 1000);
  });
});

describe("quoted identifiers", () => {
  test("a doubled double quote stands for one, in aliases and column names", () => {
    const registry = fixtureRegistry();
    const p = planSql(
      `CREATE TABLE q ("we""ird" BIGINT, "back\\slash" TEXT) WITH (connector = 'single_file', path = '/x', format = 'json');
       SELECT "we""ird" + 1 AS "sum""s", "back\\slash" AS "x\\y" FROM q;`,
      registry,
    );
    expect(p.sinks[0]!.input.schema.fields.map((f) => f.name)).toEqual(['sum"s', "x\\y"]);
    expect(planSql(`${EXPR_TABLE}\nSELECT s AS "a""b" FROM t;`, registry).sinks[0]!.input.schema.fields[0]!.name).toBe('a"b');
  });
});
