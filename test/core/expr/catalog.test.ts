/**
 * The function catalog: DataFusion's scalar functions (and Arroyo's JSON ones)
 * each supported or refused at planning with what to write instead, at least
 * 200 supported, and the README's table generated from the same catalog.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { functionCatalog, functionsTable } from "../../../core/expr/catalog.ts";
import { exprError } from "../../kit/expr.ts";

const catalog = functionCatalog();

describe("function catalog", () => {
  test("every listed function is supported or refused with a reason; at least 200 are supported", () => {
    expect(catalog.filter((f) => f.status === "missing").map((f) => f.name)).toEqual([]);
    expect(catalog.filter((f) => f.status === "supported").length).toBeGreaterThanOrEqual(200);
  });

  test.each(catalog.filter((f) => f.status === "refused").map((f) => [f.name, f.status === "refused" ? f.instead : ""]))(
    "%s() is refused where it is called, saying what to write",
    (name, instead) => {
      const err = exprError(`${name}(s)`);
      expect(err.message).toContain(instead);
      expect(err.line).toBe(3);
      expect(err.column).toBe(8);
    },
  );

  test("the README's table is the catalog's (regenerate it with bun scripts/functions-table.ts)", () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
    const start = readme.indexOf("-->\n", readme.indexOf("<!-- functions-table")) + 4;
    const end = readme.indexOf("\n<!-- /functions-table -->");
    expect(readme.slice(start, end)).toBe(functionsTable());
  });
});
