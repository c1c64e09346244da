/**
 * node-sql-parser around the edges: before parsing a query we double-quote the
 * identifiers its PostgreSQL grammar reserves but streaming SQL uses as names
 * (`window`, `end`, `offset`, `partition`, `json`, `session`...), keeping a map
 * from the rewritten text back to the user's so errors point at their SQL.
 */
// The PostgreSQL build alone: the package's main entry loads every dialect's grammar (about 65 ms more at each start).
import { Parser } from "node-sql-parser/build/postgresql";
import { isPunct, isWord, tokenize, type Token } from "./lexer.ts";
import { SqlError } from "./errors.ts";
import type * as A from "./ast.ts";
import { CALL_MARK, Converter, FILTER_MARK, ORDER_MARK, PARTITION_MARK, RANGE_MARK, WITHIN_MARK } from "./convert.ts";

const parser = new Parser();
const OPTIONS = { database: "postgresql", parseOptions: { includeLocations: true } } as any;

/** Decides whether a word at `i` is used as an identifier the grammar would reject. */
function needsQuotes(tokens: Token[], i: number, state: { caseDepth: number; parens: boolean[] }): boolean {
  const tok = tokens[i]!;
  const word = tok.text.toLowerCase();
  const prev = tokens[i - 1];
  const next = tokens[i + 1];
  switch (word) {
    case "window":
    case "local":
      return !isPunct(next, "(");
    case "session":
      return !isPunct(next, "(");
    case "end":
      if (state.caseDepth > 0) {
        state.caseDepth--;
        return false;
      }
      return true;
    case "offset":
      return next?.kind !== "number";
    case "partition":
      return !isWord(next, "by");
    case "json":
      if (prev?.kind === "op" && prev.text === "::") return false;
      if (isWord(prev, "as") && state.parens[state.parens.length - 1]) return false;
      return !isPunct(next, "(");
    case "at":
      return !isWord(next, "time");
    case "nulls":
      return !isWord(next, "first", "last") && !isWord(prev, "ignore", "respect");
  }
  return false;
}

/** Private-use characters around a placeholder's number: they cannot occur in a rewritten query otherwise. */
const MARK_OPEN = "\uE000";
const MARK_CLOSE = "\uE001";
const PLACEHOLDER = /\uE000(\d+)\uE001/g;

const WHOLE_PLACEHOLDER = /^\uE000(\d+)\uE001$/;

/**
 * Puts the literals back into every string of the parser's tree, in place, and
 * gives literal nodes the position the parser leaves out, for error messages.
 */
function restoreLiterals(node: any, rewritten: RewrittenText): void {
  const { literals, literalAt } = rewritten;
  if (literals.length === 0) return;
  const stack: any[] = [node];
  while (stack.length > 0) {
    const current = stack.pop();
    for (const key of Object.keys(current)) {
      const v = current[key];
      if (typeof v === "string") {
        if (!v.includes(MARK_OPEN)) continue;
        const whole = key === "value" && !current.loc ? WHOLE_PLACEHOLDER.exec(v) : null;
        if (whole) current.loc = { start: { offset: literalAt[Number(whole[1])] } };
        current[key] = v.replace(PLACEHOLDER, (_, n) => literals[Number(n)]!);
      } else if (v && typeof v === "object") stack.push(v);
    }
  }
}

/** Units node-sql-parser's grammar rejects after `INTERVAL '<n>'`, though streaming SQL writes them. */
const FOLDED_INTERVAL_UNITS = new Set([
  "microsecond", "microseconds", "millisecond", "milliseconds", "week", "weeks",
  "seconds", "minutes", "hours", "days",
]);

const OPERAND_STOP_WORDS = new Set([
  "and", "or", "not", "then", "else", "end", "when", "from", "where", "group", "having", "as", "order", "limit", "union", "is",
  "between", "in", "like", "ilike", "similar", "escape", "on", "join", "window",
]);
const OPERAND_STOP_OPS = new Set(["=", "==", "<>", "!=", "<", "<=", ">", ">=", "~", "!~", "~*", "!~*", "?"]);

/** Index of the `)` closing the `(` at `open`, or -1. */
function matchingParen(tokens: Token[], open: number): number {
  let depth = 0;
  for (let j = open; j < tokens.length; j++) {
    if (isPunct(tokens[j], "(")) depth++;
    else if (isPunct(tokens[j], ")") && --depth === 0) return j;
  }
  return -1;
}

/** Index of `word` at nesting depth 0 between `from` and `to`, or -1. */
function topLevelWord(tokens: Token[], from: number, to: number, word: string): number {
  let depth = 0;
  for (let j = from; j < to; j++) {
    if (isPunct(tokens[j], "(")) depth++;
    else if (isPunct(tokens[j], ")")) depth--;
    else if (depth === 0 && isWord(tokens[j], word)) return j;
  }
  return -1;
}

/** Index of the first token after the operand starting at `from` that binds looser than a comparison. */
function operandEnd(tokens: Token[], from: number): number {
  let depth = 0;
  for (let j = from; j < tokens.length; j++) {
    const tok = tokens[j]!;
    if (tok.kind === "punct" && (tok.text === "(" || tok.text === "[")) depth++;
    else if (tok.kind === "word" && tok.text.toLowerCase() === "case") depth++;
    else if (depth > 0) {
      if ((tok.kind === "punct" && (tok.text === ")" || tok.text === "]")) || isWord(tok, "end")) depth--;
    } else if (
      (tok.kind === "punct" && tok.text !== ".") ||
      (tok.kind === "word" && OPERAND_STOP_WORDS.has(tok.text.toLowerCase()) && j > from) ||
      (tok.kind === "op" && OPERAND_STOP_OPS.has(tok.text))
    ) {
      return j;
    }
  }
  return tokens.length;
}

/** Calls node-sql-parser parses with FILTER, DISTINCT and OVER as written; any other such call is rewritten (see planCallRewrites). */
const NATIVE_FILTER = new Set(["count", "sum", "avg", "min", "max", "string_agg", "array_agg"]);
const NATIVE_DISTINCT = new Set(["count", "string_agg", "array_agg"]);
const NATIVE_ORDER = new Set(["array_agg", "string_agg"]);
const NATIVE_WITHIN = new Set(["percentile_cont", "percentile_disc", "mode"]);
const NATIVE_OVER = new Set(["row_number", "rank", "dense_rank", "ntile", "lag", "lead", "first_value", "last_value", "nth_value", "sum", "count", "avg", "min", "max"]);

/**
 * The grammar takes `FILTER (WHERE ...)`, `DISTINCT` and `OVER (...)` only after
 * some function names, and not all together. Any other call using them is
 * rewritten into a form it parses, which the converter reads back:
 * `f(DISTINCT x) FILTER (WHERE c) OVER (w)` becomes
 * `first_value(__runnel__d__f(x, __runnel_filter(c))) OVER (w)`.
 * Returns token index → text replacing that token, token index → `)` to add
 * before it, and token index → text to open before it.
 */
function planCallRewrites(tokens: Token[]): { replace: Map<number, string>; closers: Map<number, number>; before: Map<number, string> } {
  const replace = new Map<number, string>();
  const before = new Map<number, string>();
  const closers = new Map<number, number>();
  for (let i = 0; i + 1 < tokens.length; i++) {
    const tok = tokens[i]!;
    if (tok.kind !== "word" || !isPunct(tokens[i + 1], "(") || replace.has(i)) continue;
    if (isPunct(tokens[i - 1], ".") || isWord(tok, "filter", "over", "in", "as", "and", "or", "not", "exists", "values", "using", "on")) continue;
    // `WITHIN GROUP (ORDER BY x)` belongs to the call before it; the grammar parses it.
    if (isWord(tok, "group") && isWord(tokens[i - 1], "within")) continue;
    const name = tok.text.toLowerCase();
    const close = matchingParen(tokens, i + 1);
    if (close < 0) continue;
    const distinct = isWord(tokens[i + 2], "distinct");
    // ORDER BY inside the call's parentheses.
    let orderAt = -1;
    for (let j = i + 2, depth = 0; j < close; j++) {
      if (isPunct(tokens[j], "(")) depth++;
      else if (isPunct(tokens[j], ")")) depth--;
      else if (depth === 0 && isWord(tokens[j], "order") && isWord(tokens[j + 1], "by")) {
        orderAt = j;
        break;
      }
    }
    // `WITHIN GROUP (ORDER BY ...)` after the call.
    const within = isWord(tokens[close + 1], "within") && isWord(tokens[close + 2], "group") && isPunct(tokens[close + 3], "(") &&
      isWord(tokens[close + 4], "order") && isWord(tokens[close + 5], "by");
    const withinClose = within ? matchingParen(tokens, close + 3) : -1;
    if (within && withinClose < 0) continue;
    const callEnd = within ? withinClose : close;
    const filter = isWord(tokens[callEnd + 1], "filter") && isPunct(tokens[callEnd + 2], "(") && isWord(tokens[callEnd + 3], "where");
    const filterClose = filter ? matchingParen(tokens, callEnd + 2) : -1;
    if (filter && filterClose < 0) continue;
    const after = filter ? filterClose + 1 : callEnd + 1;
    const over = isWord(tokens[after], "over");
    const rewrite =
      (distinct && !NATIVE_DISTINCT.has(name)) || (filter && !NATIVE_FILTER.has(name)) || (orderAt >= 0 && !NATIVE_ORDER.has(name)) ||
      (within && !NATIVE_WITHIN.has(name)) || (over && (!NATIVE_OVER.has(name) || filter || distinct || orderAt >= 0 || within));
    if (!rewrite) continue;
    const empty = close === i + 2 + (distinct ? 1 : 0);
    const sortKeys = (from: number, to: number) => {
      for (let j = from, depth = 0; j < to; j++) {
        if (isPunct(tokens[j], "(")) depth++;
        else if (isPunct(tokens[j], ")")) depth--;
        else if (depth === 0 && isWord(tokens[j], "asc", "desc")) replace.set(j, `, ${ORDER_MARK}_${tokens[j]!.text.toLowerCase()}()`);
        else if (depth === 0 && isWord(tokens[j], "nulls") && isWord(tokens[j + 1], "first", "last")) {
          replace.set(j, `, ${ORDER_MARK}_nulls_${tokens[j + 1]!.text.toLowerCase()}()`);
          replace.set(j + 1, "");
        }
      }
    };
    const mark = `${CALL_MARK}${distinct ? "d" : ""}__${tok.text}`;
    replace.set(i, over ? `first_value(${mark}` : mark);
    if (distinct) replace.set(i + 2, "");
    if (orderAt >= 0) {
      // `ORDER BY a DESC, b` → `__runnel_order(a, __runnel_desc(), b)`: modifiers follow the key they apply to.
      replace.set(orderAt, `${orderAt === i + 2 + (distinct ? 1 : 0) ? "" : ", "}${ORDER_MARK}(`);
      replace.set(orderAt + 1, "");
      sortKeys(orderAt + 2, close);
      closers.set(close, (closers.get(close) ?? 0) + 1);
    }
    if (within) {
      // `f(p) WITHIN GROUP (ORDER BY x)` → `f(p, __runnel_within(x))`: the call stays open until the group's `)`.
      replace.set(close, `${empty ? "" : ", "}${WITHIN_MARK}(`);
      for (let j = close + 1; j <= close + 5; j++) replace.set(j, "");
      sortKeys(close + 6, withinClose);
      replace.set(withinClose, filter ? ")" : "))");
    }
    if (filter) {
      replace.set(callEnd, within ? "), " + `${FILTER_MARK}(` : `${empty ? "" : ", "}${FILTER_MARK}(`);
      replace.set(callEnd + 1, "");
      replace.set(callEnd + 2, "");
      replace.set(callEnd + 3, "");
      replace.set(filterClose, "))");
    }
    if (over) closers.set(after, (closers.get(after) ?? 0) + 1);
  }
  // `PARTITION BY` takes column names or one call in the grammar: expressions go in as __runnel_partition(e1, e2, ...).
  for (let i = 0; i + 2 < tokens.length; i++) {
    if (!isWord(tokens[i], "partition") || !isWord(tokens[i + 1], "by")) continue;
    let end = i + 2;
    let simple = true;
    for (let depth = 0; end < tokens.length; end++) {
      const tok = tokens[end]!;
      if (isPunct(tok, "(")) depth++;
      else if (isPunct(tok, ")")) {
        if (depth === 0) break;
        depth--;
      } else if (depth === 0 && isWord(tok, "order", "rows", "range")) break;
      if (depth > 0 || !(tok.kind === "word" || tok.kind === "quoted" || isPunct(tok, ".") || isPunct(tok, ","))) simple = false;
    }
    if (simple || replace.has(i + 2)) continue;
    before.set(i + 2, `${PARTITION_MARK}(`);
    closers.set(end, (closers.get(end) ?? 0) + 1);
  }
  return { replace, closers, before };
}

/** Words after which `[` opens an array literal rather than indexing what precedes it. */
const OPERAND_KEYWORDS = new Set(["select", "then", "else", "when", "and", "or", "not", "by", "on", "where", "having", "distinct", "return", "case", "is", "as", "in", "like", "between", "all"]);

/**
 * RANGE frames of OVER (...), which the grammar lacks, become a marker call
 * appended to the OVER's ORDER BY (see RANGE_MARK); offsets stay as written,
 * inside a bound marker, so they parse as expressions and keep their places.
 */
function planRangeFrames(tokens: Token[], replace: Map<number, string>, closers: Map<number, number>, before: Map<number, string>): void {
  for (let i = 1; i < tokens.length; i++) {
    if (!isWord(tokens[i], "range") || isPunct(tokens[i - 1], ".") || isPunct(tokens[i + 1], "(") || replace.has(i)) continue;
    let open = i - 1;
    let hasOrder = false;
    for (let depth = 0; open >= 0; open--) {
      const tok = tokens[open]!;
      if (isPunct(tok, ")")) depth++;
      else if (isPunct(tok, "(")) {
        if (depth === 0) break;
        depth--;
      } else if (depth === 0 && isWord(tok, "order") && isWord(tokens[open + 1], "by")) hasOrder = true;
    }
    if (open < 1 || !isWord(tokens[open - 1], "over")) continue;
    const close = matchingParen(tokens, open);
    if (close < 0) continue;
    const between = isWord(tokens[i + 1], "between");
    const first = between ? i + 2 : i + 1;
    let and = -1;
    for (let j = first, depth = 0; between && j < close; j++) {
      if (isPunct(tokens[j], "(")) depth++;
      else if (isPunct(tokens[j], ")")) depth--;
      // The AND of BETWEEN follows a bound's PRECEDING / FOLLOWING / ROW.
      else if (depth === 0 && isWord(tokens[j], "and") && isWord(tokens[j - 1], "preceding", "following", "row")) {
        and = j;
        break;
      }
    }
    if (between && and < 0) continue;
    const spans: [number, number][] = between ? [[first, and], [and + 1, close]] : [[first, close]];
    const bound = ([from, to]: [number, number]): boolean => {
      const last = tokens[to - 1];
      if (to - from === 2 && isWord(tokens[from], "current") && isWord(last, "row")) {
        replace.set(from, `${RANGE_MARK}_current()`);
        replace.set(from + 1, "");
        return true;
      }
      if (!last || !isWord(last, "preceding", "following") || to - from < 2) return false;
      const dir = last.text.toLowerCase();
      if (to - from === 2 && isWord(tokens[from], "unbounded")) {
        replace.set(from, `${RANGE_MARK}_unbounded_${dir}()`);
        replace.set(from + 1, "");
        return true;
      }
      before.set(from, `${(before.get(from) ?? "")}${RANGE_MARK}_${dir}(`);
      replace.set(to - 1, ")");
      return true;
    };
    if (!spans.every(bound)) continue;
    replace.set(i, hasOrder ? `, ${RANGE_MARK}(` : `ORDER BY ${RANGE_MARK}(`);
    if (between) {
      replace.set(i + 1, "");
      replace.set(and, ",");
    }
    closers.set(close, (closers.get(close) ?? 0) + 1);
  }
}

/** DataFusion's `MAP {k1: v1, k2: v2}`, which the grammar lacks, becomes make_map(k1, v1, k2, v2). */
function planMapLiterals(tokens: Token[], replace: Map<number, string>): void {
  for (let i = 0; i + 1 < tokens.length; i++) {
    if (!isWord(tokens[i], "map") || !isPunct(tokens[i + 1], "{")) continue;
    const colons: number[] = [];
    let close = -1;
    for (let j = i + 2, depth = 0; j < tokens.length; j++) {
      const tok = tokens[j]!;
      if (isPunct(tok, "(") || isPunct(tok, "[") || isPunct(tok, "{")) depth++;
      else if (isPunct(tok, ")") || isPunct(tok, "]")) depth--;
      else if (isPunct(tok, "}")) {
        if (depth === 0) {
          close = j;
          break;
        }
        depth--;
      } else if (depth === 0 && isPunct(tok, ":")) colons.push(j);
    }
    if (close < 0) continue;
    replace.set(i, "make_map");
    replace.set(i + 1, "(");
    for (const c of colons) replace.set(c, ",");
    replace.set(close, ")");
  }
}

export interface RewrittenText {
  text: string;
  /**
   * The values of the script's string literals and odd quoted identifiers. The
   * parser sees each as a placeholder (its own escaping rules differ from SQL's:
   * it keeps `''` doubled and reads backslashes), and `parseAst` puts the real
   * text back into the tree.
   */
  literals: string[];
  /** Where each literal's placeholder starts in `text`. */
  literalAt: number[];
  /** Maps an offset in `text` to an offset in the original script. */
  toOriginal(offset: number): number;
  /** Tokens of the original text, for locating identifiers in error messages. */
  tokens: Token[];
  /** `FOR SYSTEM_TIME AS OF x` taken out of the text, by the offset of the table name it follows. */
  asOf: Map<number, A.SystemTime>;
}

/** Reads `FOR SYSTEM_TIME AS OF name[.name]` at `i`: the time must be a column of the stream joined. */
function systemTimeClause(tokens: Token[], i: number): { asOf: A.SystemTime; last: number } {
  const prev = tokens[i - 1]!;
  if (prev.kind !== "word" && prev.kind !== "quoted") {
    throw new SqlError("FOR SYSTEM_TIME AS OF follows the lookup table's name: JOIN t FOR SYSTEM_TIME AS OF s.proc_time AS l ON s.key = l.key", tokens[i]!.start);
  }
  const parts: string[] = [];
  const partAt: number[] = [];
  let j = i + 4;
  for (;;) {
    const t = tokens[j];
    if (!t || (t.kind !== "word" && t.kind !== "quoted")) {
      throw new SqlError("FOR SYSTEM_TIME AS OF takes a time column of the stream joined (s.proc_time or s.event_time), not an expression", t?.start ?? tokens[j - 1]!.end);
    }
    parts.push(t.text);
    partAt.push(t.start);
    if (!isPunct(tokens[j + 1], ".")) break;
    j += 2;
  }
  if (isPunct(tokens[j + 1], "(")) {
    throw new SqlError("FOR SYSTEM_TIME AS OF takes a time column of the stream joined (s.proc_time or s.event_time), not a function call", tokens[j]!.start);
  }
  return { asOf: { at: tokens[i]!.start, time: { kind: "column", parts, partAt, at: partAt[0]! } }, last: j };
}

/** Rewrites [start, end) of `sql`, quoting reserved identifiers; `prefix` is prepended (e.g. "SELECT "). */
export function rewriteForParser(sql: string, start: number, end: number, prefix = "", suffix = ""): RewrittenText {
  const tokens = tokenize(sql, start, end);
  const state = { caseDepth: 0, parens: [] as boolean[] };
  const literals: string[] = [];
  const literalAt: number[] = [];
  let text = prefix;
  /** `at`: where the placeholder's quote sits in the rewritten text, so the literal gets a position. */
  const placeholder = (value: string, at = text.length) => {
    literals.push(value);
    literalAt.push(at);
    return `${MARK_OPEN}${literals.length - 1}${MARK_CLOSE}`;
  };
  const marks: { at: number; original: number }[] = [];
  const asOf = new Map<number, A.SystemTime>();
  let cursor = start;
  /** Token index → how many `)` to put before it (closing parentheses the rewrite opened). */
  const { replace, closers, before } = planCallRewrites(tokens);
  planRangeFrames(tokens, replace, closers, before);
  planMapLiterals(tokens, replace);
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    if (closers.has(i)) text += ")".repeat(closers.get(i)!);
    text += sql.slice(cursor, tok.start);
    if (before.has(i)) text += before.get(i);
    marks.push({ at: text.length, original: tok.start });
    let out = sql.slice(tok.start, tok.end);
    const replaced = replace.get(i);
    if (replaced !== undefined) {
      if (isPunct(tok, "(")) state.parens.push(false);
      else if (isPunct(tok, ")")) state.parens.pop();
      text += replaced;
      cursor = tok.end;
      continue;
    }
    // Window syntax the grammar lacks: refused here, where it is written, rather than as a syntax error.
    if (isWord(tok, "ignore", "respect") && isWord(tokens[i + 1], "nulls")) {
      const option = `${tok.text.toUpperCase()} NULLS`;
      if (!isPunct(tokens[i - 1], ")")) throw new SqlError(`write ${option} after the call's parentheses: first_value(x) ${option} OVER (...)`, tok.start);
      let open = i - 1;
      for (let depth = 0; open >= 0; open--) {
        if (isPunct(tokens[open], ")")) depth++;
        else if (isPunct(tokens[open], "(") && --depth === 0) break;
      }
      const fn = tokens[open - 1];
      if (!fn || !isWord(fn, "lag", "lead", "first_value", "last_value", "nth_value")) {
        throw new SqlError(`${option} applies to lag, lead, first_value, last_value and nth_value (aggregates skip NULLs already)`, fn?.start ?? tok.start);
      }
    }
    if (isWord(tok, "for") && isWord(tokens[i + 1], "system_time") && isWord(tokens[i + 2], "as") && isWord(tokens[i + 3], "of") && i > 0) {
      // Flink's lookup join: the grammar lacks the clause, so it is taken out here and handed to the converter by its table.
      const clause = systemTimeClause(tokens, i);
      asOf.set(tokens[i - 1]!.start, clause.asOf);
      cursor = tokens[clause.last]!.end;
      i = clause.last;
      continue;
    }
    if (isPunct(tok, "[")) {
      const prev = tokens[i - 1];
      const operand = !prev || prev.kind === "op" || (prev.kind === "punct" && (prev.text === "(" || prev.text === "," || prev.text === "[" || prev.text === "{" || prev.text === ":")) ||
        (prev.kind === "word" && OPERAND_KEYWORDS.has(prev.text.toLowerCase()));
      // `[1, 2]` is an array literal (DataFusion's syntax); the grammar takes ARRAY[1, 2].
      if (operand) out = "ARRAY[";
    }
    const unit = tokens[i + 2];
    if (
      isWord(tok, "interval") && tokens[i + 1]?.kind === "string" && unit?.kind === "word" &&
      FOLDED_INTERVAL_UNITS.has(unit.text.toLowerCase())
    ) {
      // INTERVAL '2' MILLISECOND → INTERVAL '2 MILLISECOND', the form the grammar takes for any unit.
      text += `INTERVAL '${placeholder(`${tokens[i + 1]!.text} ${unit.text}`, text.length + 9)}'`;
      cursor = unit.end;
      i += 2;
      continue;
    }
    if (isWord(tok, "extract") && isPunct(tokens[i + 1], "(") && tokens[i + 2]?.kind === "word" && isWord(tokens[i + 3], "from")) {
      // The grammar knows only some EXTRACT fields (not microsecond, nanosecond...): date_part takes them all.
      text += `date_part('${tokens[i + 2]!.text.toLowerCase()}', `;
      cursor = tokens[i + 3]!.end;
      i += 3;
      continue;
    }
    if (isWord(tok, "try_cast") && isPunct(tokens[i + 1], "(")) {
      // TRY_CAST(x AS type): the grammar has no TRY_CAST; it becomes try_cast(x, 'type').
      const close = matchingParen(tokens, i + 1);
      const as = close < 0 ? -1 : topLevelWord(tokens, i + 2, close, "as");
      if (as > 0) {
        text += "try_cast(" + sql.slice(tokens[i + 2]!.start, tokens[as]!.start) + `, '${placeholder(sql.slice(tokens[as + 1]!.start, tokens[close]!.start).trim(), text.length)}')`;
        cursor = tokens[close]!.end;
        i = close;
        continue;
      }
    }
    if (isWord(tok, "similar") && isWord(tokens[i + 1], "to")) {
      throw new SqlError("SIMILAR TO is not supported; write regexp_like(text, '^(...)$') with a regular expression", tok.start);
    }
    if (isWord(tok, "is")) {
      // node-sql-parser cannot parse IS [NOT] DISTINCT FROM. SIMILAR TO has its precedence (and is refused above, so
      // it stands in unambiguously); its right side is parenthesised, as the grammar takes only simple operands there.
      const not = isWord(tokens[i + 1], "not") ? 1 : 0;
      if (isWord(tokens[i + 1 + not], "distinct") && isWord(tokens[i + 2 + not], "from")) {
        text += not ? "NOT SIMILAR TO (" : "SIMILAR TO (";
        cursor = tokens[i + 2 + not]!.end;
        const end = operandEnd(tokens, i + 3 + not);
        closers.set(end, (closers.get(end) ?? 0) + 1);
        i += 2 + not;
        continue;
      }
    }
    if (tok.kind === "op" && tok.text === "==") {
      // DataFusion reads == as =.
      text += "=";
      cursor = tok.end;
      continue;
    }
    if (tok.kind === "word") {
      const lower = tok.text.toLowerCase();
      if (lower === "case") state.caseDepth++;
      if (needsQuotes(tokens, i, state)) out = `"${tok.text}"`;
    } else if (tok.kind === "string") {
      out = `'${placeholder(tok.text)}'`;
    } else if (tok.kind === "quoted") {
      // node-sql-parser cannot read `""` inside a quoted name, and keeps backslashes as written.
      out = /["\\\uE000\uE001]/.test(tok.text) ? `"${placeholder(tok.text)}"` : `"${tok.text}"`;
    } else if (tok.kind === "punct" && tok.text === "(") {
      state.parens.push(isWord(tokens[i - 1], "cast"));
    } else if (tok.kind === "punct" && tok.text === ")") {
      state.parens.pop();
    }
    text += out;
    cursor = tok.end;
  }
  text += ")".repeat(closers.get(tokens.length) ?? 0) + sql.slice(cursor, end) + suffix;
  const base = prefix.length;
  return {
    text,
    literals,
    literalAt,
    tokens,
    asOf,
    toOriginal(offset: number): number {
      if (offset < base) return start;
      let lo = 0;
      let hi = marks.length - 1;
      let best = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (marks[mid]!.at <= offset) {
          best = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      if (best < 0) return start + Math.max(0, offset - base);
      return Math.min(end, marks[best]!.original + (offset - marks[best]!.at));
    },
  };
}

function describeExpected(err: any): string {
  const found = err?.found;
  if (found === null || found === undefined) return "unexpected end of statement";
  if (found === MARK_OPEN || found === "'") return "unexpected string";
  return `unexpected ${JSON.stringify(found)}`;
}

/** Parses rewritten text with node-sql-parser, turning its errors into SqlErrors at the user's position. */
export function parseAst(rewritten: RewrittenText, what: string): any {
  let ast: any;
  try {
    ast = parser.astify(rewritten.text, OPTIONS);
  } catch (err: any) {
    const offset = err?.location?.start?.offset;
    const at = typeof offset === "number" ? rewritten.toOriginal(offset) : null;
    throw new SqlError(`syntax error in ${what}: ${describeExpected(err)}`, at);
  }
  restoreLiterals(ast, rewritten);
  return ast;
}

/** Parses the query in [range.start, range.end) of `sql` into the typed syntax tree. */
export function parseQuery(sql: string, range: { start: number; end: number }): A.Query {
  const text = rewriteForParser(sql, range.start, range.end);
  const ast = parseAst(text, "the query");
  const stmt = Array.isArray(ast) ? ast[0] : ast;
  if (Array.isArray(ast) && ast.length > 1) throw new SqlError("expected one query; end statements with ;", range.start);
  if (stmt?.type !== "select") throw new SqlError(`expected a SELECT query, found ${String(stmt?.type ?? "nothing").toUpperCase()}`, range.start);
  const query = new Converter(text, range.start).query(stmt, range.start);
  for (const [, clause] of text.asOf) {
    if (!clause.attached) throw new SqlError("FOR SYSTEM_TIME AS OF follows a table's name in FROM (JOIN t FOR SYSTEM_TIME AS OF s.proc_time AS l)", clause.at);
  }
  return query;
}

/** Parses one expression written inside DDL (GENERATED ... AS, WATERMARK ... AS). */
export function parseExpression(sql: string, range: { start: number; end: number }, clause: string): A.Expr {
  const text = rewriteForParser(sql, range.start, range.end, "SELECT ", " FROM __ddl");
  const ast = parseAst(text, clause);
  const select = Array.isArray(ast) ? ast[0] : ast;
  const column = select?.columns?.[0];
  if (!column || select.columns.length !== 1) throw new SqlError(`expected one expression in ${clause}`, range.start);
  return new Converter(text, range.start).expr(column.expr, range.start);
}
