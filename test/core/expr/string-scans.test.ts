/**
 * split_part scans for the delimiters around the piece it returns, and a
 * regex call with a constant pattern is compiled once at planning: both must
 * give what DuckDB gives (the common ground with DataFusion: non-empty
 * delimiters, positions from either end, overlapping delimiters, Unicode), and
 * the same as a call whose pattern varies by row.
 */
import { describe, expect, test } from "bun:test";
import { duckQuery } from "../../kit/duckdb.ts";
import { EXPR_ROW, evalSql } from "../../kit/expr.ts";

const quote = (s: string) => `'${s.replaceAll("'", "''")}'`;
/** The fixture row with `s` (TEXT), `i` (BIGINT) and `j` (JSON, read as text) set. */
const row = (s: string, i: number, j = "") => {
  const r = EXPR_ROW.slice();
  r[0] = i;
  r[2] = s;
  r[5] = j;
  return r;
};

describe("split_part against DuckDB", () => {
  const texts = ["a.b.c", ".a..b.", "", "abc", "aaa", "aaaa", "xaaxaaax", "😀ll😀lll😀", "http://www.example.com/a/b/c/d?x=1", "no delimiter"];
  const delimiters = [".", "aa", "ll", "😀", "/", "://", "xyz"];
  const positions = [1, 2, 3, 4, 5, 6, 9, -1, -2, -3, -4, -6];

  test("every text, delimiter and position", async () => {
    const cases = texts.flatMap((s) => delimiters.flatMap((d) => positions.map((n) => ({ s, d, n }))));
    const duck = await duckQuery(`SELECT ${cases.map((c, k) => `split_part(${quote(c.s)}, ${quote(c.d)}, ${c.n}) AS c${k}`).join(", ")}`);
    const theirs = Object.values(duck[0]!);
    const ours = cases.map((c) => evalSql(`split_part(s, ${quote(c.d)}, ${c.n})`, row(c.s, 0)));
    const label = (v: unknown[]) => v.map((x, k) => `${JSON.stringify(cases[k])} → ${JSON.stringify(x)}`);
    expect(label(ours)).toEqual(label(theirs));
  });
  test("calls that take pieces of the same text in any order, between calls on other texts and delimiters, give DuckDB's pieces", async () => {
    // split_part keeps the delimiters it found in the last text for the next call on it (q22 takes three pieces of a url).
    const order = [3, 1, 2, 6, 4, -1, 5, 1, 9, -3, 2, 2];
    const cases = texts.flatMap((s, t) => delimiters.flatMap((d) => order.flatMap((n, k) => [{ s, d, n }, ...(k % 4 === 3 ? [{ s: texts[(t + 1) % texts.length]!, d, n: 2 }] : [])])));
    const duck = await duckQuery(`SELECT ${cases.map((c, k) => `split_part(${quote(c.s)}, ${quote(c.d)}, ${c.n}) AS c${k}`).join(", ")}`);
    const theirs = Object.values(duck[0]!);
    const ours = cases.map((c) => evalSql(`split_part(s, ${quote(c.d)}, ${c.n})`, row(c.s, 0)));
    const label = (v: unknown[]) => v.map((x, k) => `${JSON.stringify(cases[k])} → ${JSON.stringify(x)}`);
    expect(label(ours)).toEqual(label(theirs));
  });
});

describe("regular expressions with a constant pattern", () => {
  const urls = [
    "https://www.nexmark.com/abc/def/item.htm?query=1&channel_id=1234",
    "https://www.nexmark.com/abc/def/item.htm?channel_id=&x=1",
    "channel_id=first&channel_id=second",
    "https://www.nexmark.com/abc/def/item.htm?query=1",
    "CHANNEL_ID=upper",
  ];
  const pattern = "(&|^)channel_id=([^&]*)";

  test("regexp_match(...)[2] is DuckDB's regexp_extract(..., 2), and the same with the pattern in a column", async () => {
    const duck = await duckQuery(`SELECT ${urls.map((u, k) => `nullif(regexp_extract(${quote(u)}, ${quote(pattern)}, 2), '') AS c${k}`).join(", ")}`);
    const theirs = Object.values(duck[0]!);
    // DuckDB's regexp_extract gives '' for a match whose group is empty as for no match: compare those as NULL.
    const ours = urls.map((u) => evalSql(`nullif(regexp_match(s, ${quote(pattern)})[2], '')`, row(u, 0)));
    const perRow = urls.map((u) => evalSql("nullif(regexp_match(s, j)[2], '')", row(u, 0, pattern)));
    expect(ours).toEqual(theirs);
    expect(perRow).toEqual(theirs);
    expect(theirs.filter((v) => v !== null).length).toBe(2);
  });

  test("constant flags apply; regexp_like and regexp_replace (once and with 'g') agree with the per-row pattern", async () => {
    for (const u of urls) {
      const s = row(u, 0, "channel_id=([^&]*)");
      expect(evalSql("regexp_match(s, 'channel_id=([^&]*)', 'i')", s)).toEqual(evalSql("regexp_match(s, j, 'i')", s));
      expect(evalSql("regexp_like(s, 'channel_id=([^&]*)')", s)).toBe(evalSql("regexp_like(s, j)", s) as boolean);
      expect(evalSql("regexp_replace(s, 'channel_id=([^&]*)', '<\\1>', 'g')", s)).toBe(evalSql("regexp_replace(s, j, '<\\1>', 'g')", s) as string);
      expect(evalSql("regexp_replace(s, 'channel_id=([^&]*)', '<$1>')", s)).toBe(evalSql("regexp_replace(s, j, '<$1>')", s) as string);
    }
    expect(evalSql("regexp_match(s, 'channel_id=([^&]*)', 'i')", row("CHANNEL_ID=upper", 0))).toEqual(["upper"]);
    expect(evalSql("regexp_replace(s, 'a', 'x', 'g')", row("banana", 0))).toBe("bxnxnx");
    // The compiled regex is the call's own: a global one starts each row from the beginning.
    expect(evalSql("regexp_replace(s, 'a', 'x', 'g')", row("aaa", 0))).toBe("xxx");
  });
});
