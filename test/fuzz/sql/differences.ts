/**
 * Where Runnel and DuckDB disagree on purpose. Runnel follows DataFusion
 * (Arroyo's engine), and DuckDB differs from DataFusion in a few documented
 * places; each entry says why, is listed in the README, and is pinned by its
 * own unit test (test/core/expr/functions.test.ts). A disagreement matching
 * none of these is a finding.
 */

export type Outcome = { agree: true } | { agree: false; detail: string };

type Result = { ok: true; rows: unknown[][] } | { ok: false; error: string; planning: boolean };

const EXACT = Number.MAX_SAFE_INTEGER;

const flat = (r: Result) => (r.ok ? r.rows.flat().map((v) => (typeof v === "bigint" ? Number(v) : v)) : []);

export interface Difference {
  name: string;
  /** Whether this difference accounts for the disagreement. */
  applies(query: string, ours: Result, theirs: Result): boolean;
}

export const DIFFERENCES: Difference[] = [
  {
    // Runnel holds integers as doubles: an intermediate or final result beyond ±(2^53 − 1) stops the job (the error
    // names the operation and its value) rather than giving a rounded number. DuckDB's BIGINT reaches ±2^63.
    name: "integers beyond ±(2^53 − 1) stop the job in Runnel",
    applies: (_q, ours) => {
      if (ours.ok) return false;
      const m =
        /integer overflow: .* = (-?[\d.e+]+) is outside ±9007199254740991/.exec(ours.error) ??
        /integer overflow: sum\(\) reached (-?[\d.e+]+)/.exec(ours.error) ??
        /^(-?[\d.e+]+) is out of range for BIGINT/.exec(ours.error);
      return m !== null && Math.abs(Number(m[1])) > EXACT;
    },
  },
  {
    // DataFusion computes math functions of ±inf and NaN (and sqrt of negatives...) to NaN, as IEEE does; DuckDB
    // refuses such input with an error.
    name: "math functions of non-finite input: DataFusion gives NaN, DuckDB an error",
    applies: (_q, ours, theirs) => ours.ok && !theirs.ok && /out of range for numeric function|cannot take|undefined outside/.test(theirs.error),
  },
  {
    // SQL leaves the order of evaluation open: Runnel skips the right side of AND/OR, and CASE/COALESCE branches,
    // once the result is decided (as DataFusion does for a batch), and evaluates both bounds of BETWEEN; DuckDB makes
    // other choices; DuckDB folds `x // 0` to NULL without computing x. Where one engine hits an error in a part the
    // other skips, they disagree on error versus value.
    name: "evaluation order: an error in a part the other engine never evaluates (AND/OR/BETWEEN/CASE/COALESCE/NULLIF, x / 0)",
    applies: (q, ours, theirs) =>
      (/\b(AND|OR|BETWEEN|CASE|coalesce|nullif)\b/.test(q) || /\/ 0\)/.test(q)) &&
      ((ours.ok && !theirs.ok && /out of range|Overflow|Conversion Error/i.test(theirs.error)) ||
        (!ours.ok && theirs.ok && /integer overflow|out of range|cannot cast/.test(ours.error))),
  },
  {
    // Runnel (like DataFusion's simplifier) evaluates constant CASTs when planning and refuses one that cannot
    // convert; DuckDB may never evaluate it when a NULL elsewhere already decides the result.
    name: "a constant CAST that cannot convert is refused at planning",
    applies: (_q, ours) => !ours.ok && ours.planning && /is out of range for|cannot cast/.test(ours.error),
  },
];

/** The name of the difference that explains a disagreement, or null for a finding. */
export function explain(query: string, ours: Result, theirs: Result, _rows: unknown[][]): string | null {
  return DIFFERENCES.find((d) => d.applies(query, ours, theirs))?.name ?? null;
}
