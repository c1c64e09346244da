/** User-facing SQL errors: a message, where it happened, and what to do. */
import { levenshtein } from "../expr/functions.ts";
import { lineColumn } from "./lexer.ts";

export class SqlError extends Error {
  override name = "SqlError";
  constructor(
    message: string,
    /** Offset into the script; null when no position is known. */
    readonly offset: number | null,
    /** For option errors: the option at fault (e.g. `'sink.commit_mode'`), for APIs. */
    readonly option?: string,
  ) {
    super(message);
  }

  /** 1-based line and column, given the script the offset refers to. */
  position(sql: string): { line: number; column: number } | null {
    return this.offset === null ? null : lineColumn(sql, this.offset);
  }
}

/** `error at line 3, column 8: ...` followed by the line and a caret. */
export function formatSqlError(err: SqlError, sql: string): string {
  const pos = err.position(sql);
  if (!pos) return `error: ${err.message}`;
  const text = sql.split("\n")[pos.line - 1] ?? "";
  const gutter = String(pos.line).length;
  return [
    `error at line ${pos.line}, column ${pos.column}: ${err.message}`,
    `  ${pos.line} | ${text}`,
    `  ${" ".repeat(gutter)} | ${" ".repeat(Math.max(0, pos.column - 1))}^`,
  ].join("\n");
}

/** The closest candidate to a misspelt name, if one is close enough. */
export function closest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const lower = name.toLowerCase();
  for (const c of candidates) {
    const d = levenshtein(lower, c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

export function didYouMean(name: string, candidates: Iterable<string>): string {
  const hit = closest(name, candidates);
  return hit ? `; did you mean \`${hit}\`?` : "";
}
