/**
 * Statement-level parsing: classifies each statement of a script and parses the
 * DDL node-sql-parser does not know (streaming CREATE TABLE with WATERMARK FOR,
 * GENERATED and METADATA columns, quoted option keys). Queries are left as text
 * ranges for the query parser.
 */
import { isPunct, isWord, splitStatements, type StatementText, type Token } from "./lexer.ts";
import { SqlError } from "./errors.ts";
import { parseTypeTokens } from "./types.ts";
import type { SqlType } from "../plugin-api/index.ts";

/** A range of the script holding an expression or a query. */
export interface TextRange {
  start: number;
  end: number;
}

export interface ColumnDecl {
  name: string;
  type: SqlType;
  nullable: boolean;
  /** GENERATED ALWAYS AS (expr). */
  generated?: TextRange;
  /** METADATA FROM 'key'. */
  metadata?: string;
  offset: number;
}

export interface OptionDecl {
  key: string;
  value: string;
  keyOffset: number;
  valueOffset: number;
}

export interface CreateTable {
  kind: "create_table";
  name: string;
  nameOffset: number;
  columns: ColumnDecl[] | null;
  watermark?: { column: string; offset: number; expr?: TextRange };
  /** PRIMARY KEY (a, b), or PRIMARY KEY after a column. */
  primaryKey?: { columns: { name: string; offset: number }[]; offset: number };
  options: OptionDecl[];
  offset: number;
  /** CREATE TEMPORARY TABLE: Arroyo's spelling of a lookup table; where TEMPORARY is written. */
  temporaryAt?: number;
}

export interface CreateView {
  kind: "create_view";
  name: string;
  query: TextRange;
  offset: number;
}

export interface Insert {
  kind: "insert";
  table: string;
  tableOffset: number;
  columns: string[] | null;
  query: TextRange;
  offset: number;
}

export interface Select {
  kind: "select";
  query: TextRange;
  offset: number;
}

/** `SET name = value`: a pipeline-wide setting (Arroyo's `SET updating_ttl = INTERVAL '1' HOUR`). */
export interface SetOption {
  kind: "set";
  name: string;
  nameOffset: number;
  /** The value's text, as written (a quoted string's contents, or the INTERVAL expression). */
  value: string;
  valueOffset: number;
  offset: number;
}

export type Statement = CreateTable | CreateView | Insert | Select | SetOption;

class Cursor {
  i = 0;
  constructor(
    readonly tokens: Token[],
    readonly stmt: StatementText,
  ) {}
  peek(k = 0): Token | undefined {
    return this.tokens[this.i + k];
  }
  next(): Token | undefined {
    return this.tokens[this.i++];
  }
  here(): number {
    return this.peek()?.start ?? this.stmt.end;
  }
  word(...words: string[]): boolean {
    if (isWord(this.peek(), ...words)) {
      this.i++;
      return true;
    }
    return false;
  }
  expectWord(...words: string[]): void {
    if (!this.word(...words)) throw new SqlError(`expected ${words.join(" or ").toUpperCase()}`, this.here());
  }
  punct(p: string): boolean {
    if (isPunct(this.peek(), p)) {
      this.i++;
      return true;
    }
    return false;
  }
  expectPunct(p: string, why: string): void {
    if (!this.punct(p)) throw new SqlError(`expected '${p}' ${why}`, this.here());
  }
  identifier(what: string): Token {
    const t = this.peek();
    if (!t || (t.kind !== "word" && t.kind !== "quoted")) throw new SqlError(`expected ${what}`, this.here());
    this.i++;
    return t;
  }
  /** Skips a balanced parenthesised group starting at the current `(`; returns the range inside. */
  group(): TextRange {
    const open = this.peek()!;
    let depth = 0;
    for (;;) {
      const t = this.next();
      if (!t) throw new SqlError("missing ')'", open.start);
      if (isPunct(t, "(")) depth++;
      else if (isPunct(t, ")") && --depth === 0) return { start: open.end, end: t.start };
    }
  }
}

function parseOptions(c: Cursor): OptionDecl[] {
  const options: OptionDecl[] = [];
  c.expectPunct("(", "after WITH");
  if (c.punct(")")) return options;
  for (;;) {
    const keyTok = c.peek();
    if (!keyTok) throw new SqlError("expected an option name", c.here());
    let key: string;
    if (keyTok.kind === "string" || keyTok.kind === "quoted") {
      key = keyTok.text;
      c.i++;
    } else if (keyTok.kind === "word") {
      // Unquoted dotted keys: sink.commit_mode
      key = keyTok.text;
      c.i++;
      while (isPunct(c.peek(), ".") && (c.peek(1)?.kind === "word" || c.peek(1)?.kind === "number")) {
        key += "." + c.peek(1)!.text;
        c.i += 2;
      }
    } else {
      throw new SqlError(`expected an option name, found '${keyTok.text}'`, keyTok.start);
    }
    const eq = c.next();
    if (!eq || eq.text !== "=") throw new SqlError(`expected '=' after option ${key}`, eq?.start ?? c.here());
    let valTok = c.next();
    let sign = "";
    if (valTok && valTok.kind === "op" && valTok.text === "-" && c.peek()?.kind === "number") {
      sign = "-";
      valTok = c.next();
    }
    // Arroyo also writes `interval '10 minutes'` and `[a, b]` as option values.
    if (valTok && isWord(valTok, "interval") && c.peek()?.kind === "string") {
      valTok = c.next()!;
      // `interval '5' second`: the unit after the quoted number.
      const unit = c.peek();
      if (unit?.kind === "word" && /^\s*-?\d+(\.\d+)?\s*$/.test(valTok.text) && !isPunct(c.peek(1), "=")) {
        c.next();
        options.push({ key, value: `${valTok.text.trim()} ${unit.text}`, keyOffset: keyTok.start, valueOffset: valTok.start });
        if (c.punct(",")) continue;
        if (c.punct(")")) break;
        throw new SqlError("expected ',' or ')' in WITH options", c.here());
      }
    } else if (valTok && isPunct(valTok, "[")) {
      const start = valTok;
      const items: string[] = [];
      while (!isPunct(c.peek(), "]")) {
        const item = c.next();
        if (!item || !["string", "number", "word", "quoted"].includes(item.kind)) {
          throw new SqlError(`expected a list of values like [a, b] for option ${key}`, item?.start ?? c.here());
        }
        items.push(item.text);
        if (!c.punct(",") && !isPunct(c.peek(), "]")) throw new SqlError(`expected ',' or ']' in the list for option ${key}`, c.here());
      }
      c.next();
      options.push({ key, value: items.join(","), keyOffset: keyTok.start, valueOffset: start.start });
      if (c.punct(",")) continue;
      if (c.punct(")")) break;
      throw new SqlError(`expected ',' or ')' in WITH options`, c.here());
    }
    if (!valTok || !["string", "number", "word", "quoted"].includes(valTok.kind)) {
      throw new SqlError(`expected a value for option ${key}`, valTok?.start ?? c.here());
    }
    const value = sign + valTok.text;
    options.push({ key, value, keyOffset: keyTok.start, valueOffset: valTok.start });
    if (c.punct(",")) continue;
    if (c.punct(")")) break;
    throw new SqlError("expected ',' or ')' in WITH options", c.here());
  }
  return options;
}

function parseCreateTable(c: Cursor, offset: number): CreateTable {
  c.word("if") && (c.expectWord("not"), c.expectWord("exists"));
  const nameTok = c.identifier("a table name");
  const table: CreateTable = { kind: "create_table", name: nameTok.text, nameOffset: nameTok.start, columns: null, options: [], offset };
  if (isPunct(c.peek(), "(")) {
    c.next();
    table.columns = [];
    if (!c.punct(")")) {
      for (;;) {
        if (isWord(c.peek(), "watermark") && isWord(c.peek(1), "for")) {
          const at = c.here();
          c.i += 2;
          const col = c.identifier("the event-time column after WATERMARK FOR");
          let expr: TextRange | undefined;
          if (c.word("as")) {
            const from = c.peek();
            if (!from) throw new SqlError("expected an expression after AS", c.here());
            let depth = 0;
            const startAt = from.start;
            let endAt = startAt;
            while (c.peek() && !(depth === 0 && (isPunct(c.peek(), ",") || isPunct(c.peek(), ")")))) {
              const t = c.next()!;
              if (isPunct(t, "(")) depth++;
              if (isPunct(t, ")")) depth--;
              endAt = t.end;
            }
            expr = { start: startAt, end: endAt };
          }
          if (table.watermark) throw new SqlError("a table has at most one WATERMARK FOR", at);
          table.watermark = { column: col.text, offset: col.start, expr };
        } else if (isWord(c.peek(), "primary") && isWord(c.peek(1), "key")) {
          const at = c.here();
          c.i += 2;
          if (table.primaryKey) throw new SqlError("a table has at most one PRIMARY KEY", at);
          c.expectPunct("(", "after PRIMARY KEY");
          const columns: { name: string; offset: number }[] = [];
          for (;;) {
            const col = c.identifier("a column name in PRIMARY KEY (...)");
            columns.push({ name: col.text, offset: col.start });
            if (c.punct(",")) continue;
            c.expectPunct(")", "after the PRIMARY KEY columns");
            break;
          }
          // NOT ENFORCED, as Flink writes it: Runnel never enforces keys either.
          if (c.word("not")) c.expectWord("enforced");
          table.primaryKey = { columns, offset: at };
        } else {
          const colTok = c.identifier("a column name");
          const { type, next } = parseTypeTokens(c.tokens, c.i);
          c.i = next;
          const col: ColumnDecl = { name: colTok.text, type, nullable: true, offset: colTok.start };
          for (;;) {
            if (c.word("not")) {
              c.expectWord("null");
              col.nullable = false;
            } else if (c.word("null")) {
              col.nullable = true;
            } else if (isWord(c.peek(), "primary")) {
              const at = c.here();
              c.i++;
              c.expectWord("key");
              if (c.word("not")) c.expectWord("enforced");
              if (table.primaryKey) throw new SqlError("a table has at most one PRIMARY KEY", at);
              table.primaryKey = { columns: [{ name: colTok.text, offset: colTok.start }], offset: at };
            } else if (c.word("generated")) {
              c.expectWord("always");
              c.expectWord("as");
              if (!isPunct(c.peek(), "(")) throw new SqlError("expected '(' after GENERATED ALWAYS AS", c.here());
              col.generated = c.group();
              c.word("stored") || c.word("virtual");
            } else if (isWord(c.peek(), "as") && isPunct(c.peek(1), "(")) {
              c.next();
              col.generated = c.group();
            } else if (c.word("metadata")) {
              c.expectWord("from");
              const key = c.next();
              if (!key || key.kind !== "string") throw new SqlError("expected a quoted key after METADATA FROM", key?.start ?? c.here());
              col.metadata = key.text;
              c.word("virtual");
            } else break;
          }
          table.columns.push(col);
        }
        if (c.punct(",")) continue;
        if (c.punct(")")) break;
        throw new SqlError(`expected ',' or ')' after column, found '${c.peek()?.text ?? "end of statement"}'`, c.here());
      }
    }
  }
  if (c.word("with")) table.options = parseOptions(c);
  if (isWord(c.peek(), "as")) {
    throw new SqlError("CREATE TABLE ... AS SELECT is not supported; write CREATE VIEW name AS SELECT ..., or declare the table's columns and INSERT INTO it", c.here());
  }
  if (c.peek()) throw new SqlError(`unexpected '${c.peek()!.text}' after CREATE TABLE`, c.here());
  return table;
}

function rest(c: Cursor): TextRange {
  const t = c.peek();
  if (!t) throw new SqlError("expected a query", c.here());
  return { start: t.start, end: c.stmt.end };
}

export function parseStatements(sql: string): Statement[] {
  const out: Statement[] = [];
  for (const stmt of splitStatements(sql)) {
    const c = new Cursor(stmt.tokens, stmt);
    const first = c.peek()!;
    const offset = first.start;
    if (c.word("create")) {
      c.word("or") && c.expectWord("replace");
      const temporary = c.peek();
      const isTemporary = c.word("temporary", "temp");
      if (c.word("table")) {
        const table = parseCreateTable(c, offset);
        if (isTemporary) table.temporaryAt = temporary!.start;
        out.push(table);
      } else if (c.word("view")) {
        c.word("if") && (c.expectWord("not"), c.expectWord("exists"));
        const name = c.identifier("a view name");
        if (isPunct(c.peek(), "(")) throw new SqlError("column lists on views are not supported; alias the columns in the query", c.here());
        c.expectWord("as");
        out.push({ kind: "create_view", name: name.text, query: rest(c), offset });
      } else {
        throw new SqlError(`CREATE ${c.peek()?.text ?? ""} is not supported; use CREATE TABLE or CREATE VIEW`, c.here());
      }
    } else if (c.word("insert")) {
      c.expectWord("into");
      const table = c.identifier("the table to insert into");
      let columns: string[] | null = null;
      if (isPunct(c.peek(), "(") && !isWord(c.peek(1), "select", "with")) {
        c.next();
        columns = [];
        for (;;) {
          columns.push(c.identifier("a column name").text);
          if (c.punct(",")) continue;
          c.expectPunct(")", "after the column list");
          break;
        }
      }
      out.push({ kind: "insert", table: table.text, tableOffset: table.start, columns, query: rest(c), offset });
    } else if (c.word("set")) {
      const name = c.identifier("a setting name after SET");
      if (c.peek()?.text === "=") c.i++;
      else c.expectWord("to");
      const from = c.peek();
      if (!from) throw new SqlError(`expected a value for ${name.text}`, c.here());
      const last = stmt.tokens[stmt.tokens.length - 1]!;
      const value = from.kind === "string" && c.i === stmt.tokens.length - 1 ? from.text : sql.slice(from.start, last.end);
      out.push({ kind: "set", name: name.text, nameOffset: name.start, value, valueOffset: from.start, offset });
    } else if (isWord(first, "select", "with") || isPunct(first, "(")) {
      out.push({ kind: "select", query: { start: first.start, end: stmt.end }, offset });
    } else {
      throw new SqlError(
        `'${first.text}' statements are not supported; a pipeline is made of CREATE TABLE, CREATE VIEW, INSERT INTO ... SELECT and SELECT`,
        first.start,
      );
    }
  }
  return out;
}
