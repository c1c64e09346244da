/**
 * Rows as RFC 4180 CSV lines (without the line end, which the sink adds).
 *
 * A field is quoted when it holds the delimiter, the quote, the escape, CR or
 * LF, and a quote inside is doubled (or preceded by `escape` when that is
 * another character). NULL is an empty unquoted field and the empty string a
 * quoted one (""), which is how this format's reader and DuckDB tell them
 * apart. Values are printed as the json format prints them, so the reader
 * reads back what was written: numbers as JavaScript prints them (shortest
 * text that reads back to the same double; NaN, Infinity), timestamps as
 * RFC 3339 UTC text, intervals as microseconds, JSON as its text.
 */
import { typeName, type Field, type Row, type SqlType } from "../../core/plugin-api/index.ts";
import { formatTimestamp } from "../shared/time.ts";

export interface CsvWriteOptions {
  delimiter: string;
  quote: string;
  escape: string;
}

/** Every character the unquoted text of a value of this kind can hold; a delimiter among them forces the quoting check. */
const RENDERED_CHARS: Partial<Record<SqlType["kind"], string>> = {
  boolean: "truefals",
  int: "0123456789-+e",
  float: "0123456789.-+eInfinityNaN",
  decimal: "0123456789.-+eInfinityNaN",
  interval: "0123456789-+e",
  timestamp: "0123456789-+T:.Z",
};

/** Why a column cannot be written as CSV exactly, and what to write instead; null when it can. */
export function csvUnwritable(f: Field): string | null {
  switch (f.type.kind) {
    case "bytes":
      return `column '${f.name}' is BYTEA, which CSV has no text for; write encode(${f.name}, 'base64') or encode(${f.name}, 'hex') as TEXT, or use format 'parquet'`;
    case "array":
    case "struct":
    case "map":
      return `column '${f.name}' is ${typeName(f.type)}; CSV fields are flat values: select its elements or fields as columns of their own, or write the table with format 'json' or 'parquet'`;
    default:
      return null;
  }
}

/** The text of one field: quoted when it must be, NULL as nothing. */
export function compileFieldQuoter(o: CsvWriteOptions): (text: string) => string {
  const { delimiter, quote, escape } = o;
  const special = new RegExp(`[${[delimiter, quote, escape, "\r", "\n"].map(regexClassChar).join("")}]`);
  const inner = new RegExp(escape === quote ? regexClassChar(quote) : `[${regexClassChar(quote)}${regexClassChar(escape)}]`, "g");
  const doubled = escape === quote ? quote + quote : null;
  return (text) => {
    if (text === "") return quote + quote;
    if (!special.test(text)) return text;
    const body = doubled !== null ? text.replace(inner, doubled) : text.replace(inner, (c) => escape + c);
    return quote + body + quote;
  };
}

function regexClassChar(c: string): string {
  return /[\\\]^\-[]/.test(c) ? `\\${c}` : c;
}

/**
 * Compiles the serialization of a row of `fields` into one CSV line: generated
 * code with one monomorphic expression per column, joined by the delimiter.
 * Array.join prints NULL (null, undefined) as nothing and numbers as String()
 * does, and gives a flat string, where concatenation made a rope that the
 * sink's join of many lines had to flatten again (14% of q10). Text is quoted
 * only when it holds a special character (tested inline); numbers and the like
 * only when a special character is one their text can hold.
 */
export function compileCsvLineEncoder(fields: Field[], o: CsvWriteOptions): (row: Row) => string {
  for (const f of fields) {
    const why = csvUnwritable(f);
    if (why) throw new Error(`format 'csv': ${why}`);
  }
  const quoteField = compileFieldQuoter(o);
  const specials = [o.delimiter, o.quote, o.escape];
  const special = new RegExp(`[${[...specials, "\r", "\n"].map(regexClassChar).join("")}]`);
  const items = fields.map((f, i) => {
    const v = `row[${i}]`;
    const rendered = RENDERED_CHARS[f.type.kind];
    const safe = rendered !== undefined && !specials.some((c) => rendered.includes(c));
    switch (f.type.kind) {
      case "string":
      case "json":
        return `(v = ${v}) == null ? null : v === "" || special.test(v) ? q(v) : v`;
      case "timestamp":
        return `(v = ${v}) == null ? null : ${safe ? "ts(v)" : "q(ts(v))"}`;
      default:
        return safe ? v : `(v = ${v}) == null ? null : q("" + v)`;
    }
  });
  const body = `return function encodeCsvLine(row) {\n  let v;\n  return [\n    ${items.join(",\n    ")}\n  ].join(${JSON.stringify(o.delimiter)});\n};`;
  return new Function("q", "ts", "special", body)(quoteField, formatTimestamp, special) as (row: Row) => string;
}

/** The header line: the column names, quoted where they must be. */
export function csvHeaderLine(fields: Field[], o: CsvWriteOptions): string {
  const quoteField = compileFieldQuoter(o);
  return fields.map((f) => quoteField(f.name)).join(o.delimiter);
}
