/**
 * Bounds on query size, checked on tokens before anything parses them. The
 * parser and the planner recurse once per level of nesting and once per
 * operator of a chain (`a + b + c` is a tree as deep as it is long), so a
 * hostile or generated query could otherwise exhaust the stack or spin. The
 * defaults are far above hand-written SQL.
 */
import { SqlError } from "./errors.ts";
import { splitStatements, type Token } from "./lexer.ts";

export interface SqlLimits {
  /** Parentheses, brackets and CASE ... END nested inside each other. */
  maxExpressionDepth: number;
  /** Operators in one expression (`a + b + ...`, `x AND y AND ...`), counting those of its nested parts; list items and clauses count apart. */
  maxExpressionTerms: number;
  /** Tokens in one statement. */
  maxStatementTokens: number;
}

export const DEFAULT_SQL_LIMITS: SqlLimits = { maxExpressionDepth: 256, maxExpressionTerms: 5_000, maxStatementTokens: 50_000 };

/** Environment variables that override the defaults. */
export const SQL_LIMIT_VARIABLES: Record<keyof SqlLimits, string> = {
  maxExpressionDepth: "RUNNEL_SQL_MAX_DEPTH",
  maxExpressionTerms: "RUNNEL_SQL_MAX_TERMS",
  maxStatementTokens: "RUNNEL_SQL_MAX_TOKENS",
};

/** The defaults with the RUNNEL_SQL_MAX_* variables applied; a malformed value is an error naming the variable. */
export function sqlLimitsFromEnv(env: Record<string, string | undefined>): SqlLimits {
  const limits = { ...DEFAULT_SQL_LIMITS };
  for (const key of Object.keys(SQL_LIMIT_VARIABLES) as (keyof SqlLimits)[]) {
    const raw = env[SQL_LIMIT_VARIABLES[key]];
    if (raw === undefined || raw === "") continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${SQL_LIMIT_VARIABLES[key]} must be a whole number ≥ 1, got '${raw}'`);
    limits[key] = n;
  }
  return limits;
}

/** Words that end one expression and start another at the same level, like a comma. */
const SEPARATORS = new Set([
  "select", "from", "where", "group", "by", "having", "on", "join", "when", "then", "else", "union", "as", "order", "limit", "with", "into", "window",
]);
/** Words that combine two expressions into one (each adds a level to the tree). */
const WORD_OPERATORS = new Set(["and", "or", "is", "like", "ilike", "in", "between", "not", "distinct"]);

interface Level {
  /** Operators in the current expression of this level, including its nested parts' longest chains. */
  terms: number;
  /** The longest chain seen at this level so far. */
  longest: number;
  opener: Token | null;
}

function limitError(limit: keyof SqlLimits, limits: SqlLimits, what: string, advice: string, at: number): SqlError {
  return new SqlError(`${what} (${limit} = ${limits[limit]}, ${SQL_LIMIT_VARIABLES[limit]}); ${advice}`, at);
}

/** Throws a SqlError at the first place a statement of `sql` goes past a limit. */
export function checkSqlLimits(sql: string, limits: SqlLimits): void {
  for (const stmt of splitStatements(sql)) {
    if (stmt.tokens.length > limits.maxStatementTokens) {
      throw limitError(
        "maxStatementTokens", limits,
        `this statement has ${stmt.tokens.length} tokens, more than the limit`,
        "split it into views, or raise the limit",
        stmt.tokens[limits.maxStatementTokens]!.start,
      );
    }
    const levels: Level[] = [{ terms: 0, longest: 0, opener: null }];
    let cases = 0;
    const open = (tok: Token) => {
      levels.push({ terms: 0, longest: 0, opener: tok });
      if (levels.length - 1 > limits.maxExpressionDepth) {
        throw limitError(
          "maxExpressionDepth", limits,
          `expression nested more than ${limits.maxExpressionDepth} levels deep`,
          "remove redundant parentheses, or compute inner parts in a view or CTE",
          tok.start,
        );
      }
    };
    const close = () => {
      if (levels.length === 1) return; // unbalanced: the parser reports it
      const inner = levels.pop()!;
      levels[levels.length - 1]!.terms += Math.max(inner.longest, inner.terms) + 1;
    };
    for (const tok of stmt.tokens) {
      const level = levels[levels.length - 1]!;
      const word = tok.kind === "word" ? tok.text.toLowerCase() : "";
      if (tok.kind === "punct" && (tok.text === "(" || tok.text === "[")) open(tok);
      else if (tok.kind === "punct" && (tok.text === ")" || tok.text === "]")) close();
      else if (word === "case") {
        cases++;
        open(tok);
      } else if (word === "end" && cases > 0) {
        cases--;
        close();
      } else if ((tok.kind === "punct" && tok.text === ",") || SEPARATORS.has(word)) {
        level.longest = Math.max(level.longest, level.terms);
        level.terms = 0;
      } else if ((tok.kind === "op" && tok.text !== "::") || WORD_OPERATORS.has(word)) {
        level.terms++;
      }
      const current = levels[levels.length - 1]!;
      if (current.terms > limits.maxExpressionTerms) {
        throw limitError(
          "maxExpressionTerms", limits,
          `expression with more than ${limits.maxExpressionTerms} operators in one chain`,
          "split it into parts computed in a view or CTE, or raise the limit",
          tok.start,
        );
      }
    }
  }
}
