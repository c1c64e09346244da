/**
 * A small SQL tokenizer. node-sql-parser does the real parsing; we tokenize to
 * split a script into statements, to parse the DDL it does not understand, to
 * quote identifiers its grammar reserves (`window`, `end`, `offset`...), and to
 * find identifiers again when reporting errors.
 */

export type TokenKind = "word" | "quoted" | "string" | "number" | "op" | "punct";

export interface Token {
  kind: TokenKind;
  /** The token's text: for `quoted` and `string` the unescaped content. */
  text: string;
  /** Offsets of the raw token in the source (end exclusive). */
  start: number;
  end: number;
}

export class LexError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

const OPS = ["->>", "!~*", "::", "->", "<=", ">=", "<>", "!=", "==", "||", "!~", "~*", "=", "<", ">", "+", "-", "*", "/", "%", "~", "?"];
const PUNCT = new Set(["(", ")", ",", ";", ".", "[", "]", "{", "}", ":"]);

const SIMPLE_ESCAPES: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };

/** One backslash escape of an E'...' string at `at` (the backslash): `\n`, `\x41`, `\101`, `\u00e9`, `\U0001F600`, `\'`... */
function readEscape(sql: string, at: number, to: number): { text: string; end: number } {
  const c = sql[at + 1];
  if (c === undefined || at + 1 >= to) throw new LexError("unterminated string: add the closing quote", at);
  if (c in SIMPLE_ESCAPES) return { text: SIMPLE_ESCAPES[c]!, end: at + 2 };
  const digits = (re: RegExp, min: number, max: number, from: number) => {
    let j = from;
    while (j < to && j - from < max && re.test(sql[j]!)) j++;
    return j - from >= min ? sql.slice(from, j) : null;
  };
  let code: string | null = null;
  let end = at + 2;
  if (/[0-7]/.test(c)) {
    code = digits(/[0-7]/, 1, 3, at + 1);
    end = at + 1 + code!.length;
    code = String(parseInt(code!, 8));
  } else if (c === "x") {
    const hex = digits(/[0-9a-fA-F]/, 1, 2, at + 2);
    if (hex === null) throw new LexError("\\x in an E'' string needs one or two hex digits (\\x41)", at);
    end = at + 2 + hex.length;
    code = String(parseInt(hex, 16));
  } else if (c === "u" || c === "U") {
    const n = c === "u" ? 4 : 8;
    const hex = digits(/[0-9a-fA-F]/, n, n, at + 2);
    if (hex === null) throw new LexError(`\\${c} in an E'' string needs exactly ${n} hex digits`, at);
    end = at + 2 + n;
    code = String(parseInt(hex, 16));
  } else {
    return { text: c, end: at + 2 }; // \' \\ and any other character stand for themselves
  }
  const cp = Number(code);
  if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
    throw new LexError(`invalid character code ${cp} in an E'' string escape (zero, surrogates and codes above 10FFFF are not characters)`, at);
  }
  return { text: String.fromCodePoint(cp), end };
}

export function tokenize(sql: string, from = 0, to = sql.length): Token[] {
  const tokens: Token[] = [];
  let i = from;
  while (i < to) {
    const c = sql[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    if (c === "-" && sql[i + 1] === "-") {
      while (i < to && sql[i] !== "\n") i++;
      continue;
    }
    if (c === "/" && sql[i + 1] === "*") {
      const close = sql.indexOf("*/", i + 2);
      if (close < 0 || close >= to) throw new LexError("unterminated comment: add the closing */", i);
      i = close + 2;
      continue;
    }
    const start = i;
    if (c === "'" || ((c === "E" || c === "e") && sql[i + 1] === "'")) {
      // Standard strings keep backslashes as written; E'...' reads C-style escapes (as PostgreSQL does).
      const escapes = c !== "'";
      if (escapes) i++;
      let text = "";
      i++;
      for (;;) {
        if (i >= to) throw new LexError("unterminated string: add the closing quote", start);
        if (sql[i] === "'") {
          if (sql[i + 1] === "'") {
            text += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        if (escapes && sql[i] === "\\") {
          const e = readEscape(sql, i, to);
          text += e.text;
          i = e.end;
          continue;
        }
        text += sql[i++];
      }
      tokens.push({ kind: "string", text, start, end: i });
      continue;
    }
    if (c === '"' || c === "`") {
      let text = "";
      i++;
      for (;;) {
        if (i >= to) throw new LexError(`unterminated quoted identifier: add the closing ${c}`, start);
        if (sql[i] === c) {
          if (sql[i + 1] === c) {
            text += c;
            i += 2;
            continue;
          }
          i++;
          break;
        }
        text += sql[i++];
      }
      tokens.push({ kind: "quoted", text, start, end: i });
      continue;
    }
    if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(sql[i + 1] ?? ""))) {
      while (i < to && /[0-9.]/.test(sql[i]!)) i++;
      if (i < to && /[eE]/.test(sql[i]!) && /[-+0-9]/.test(sql[i + 1] ?? "")) {
        i += 2;
        while (i < to && /[0-9]/.test(sql[i]!)) i++;
      }
      tokens.push({ kind: "number", text: sql.slice(start, i), start, end: i });
      continue;
    }
    if (/[A-Za-z_\u00c0-\uffff]/.test(c)) {
      while (i < to && /[A-Za-z0-9_$\u00c0-\uffff]/.test(sql[i]!)) i++;
      tokens.push({ kind: "word", text: sql.slice(start, i), start, end: i });
      continue;
    }
    const op = OPS.find((o) => sql.startsWith(o, i));
    if (op) {
      tokens.push({ kind: "op", text: op, start, end: i + op.length });
      i += op.length;
      continue;
    }
    if (PUNCT.has(c)) {
      tokens.push({ kind: "punct", text: c, start, end: i + 1 });
      i++;
      continue;
    }
    throw new LexError(`unexpected character '${c}'`, i);
  }
  return tokens;
}

export interface StatementText {
  /** Offsets of the statement in the script, without the terminating `;`. */
  start: number;
  end: number;
  tokens: Token[];
}

/** Splits a script into statements at top-level semicolons; empty statements are skipped. */
export function splitStatements(sql: string): StatementText[] {
  const tokens = tokenize(sql);
  const out: StatementText[] = [];
  let current: Token[] = [];
  const flush = () => {
    if (current.length > 0) out.push({ start: current[0]!.start, end: current[current.length - 1]!.end, tokens: current });
    current = [];
  };
  for (const t of tokens) {
    if (t.kind === "punct" && t.text === ";") flush();
    else current.push(t);
  }
  flush();
  return out;
}

export const isWord = (t: Token | undefined, ...words: string[]) =>
  !!t && t.kind === "word" && words.some((w) => w.toLowerCase() === t.text.toLowerCase());

export const isPunct = (t: Token | undefined, p: string) => !!t && t.kind === "punct" && t.text === p;

/** Line and column (1-based) of an offset. */
export function lineColumn(sql: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < sql.length; i++) {
    if (sql[i] === "\n") {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}
