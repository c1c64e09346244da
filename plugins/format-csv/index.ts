/**
 * `csv`: comma-separated values, parsed by csv-parse (the `csv` project's
 * parser: RFC 4180 quoting with fields spanning lines, and the byte position
 * of every record, which is what lets a file source checkpoint its place),
 * and written by writer.ts.
 *
 * Files are read and written whole by connector 'filesystem' (a header row
 * names the columns; quoted fields may hold newlines). Anywhere else each
 * record is one CSV row whose fields fill the columns in order. An empty
 * unquoted field is NULL, a quoted one ("") the empty string, as DuckDB reads
 * and writes them.
 */
import { requireFor, requirePackages } from "../shared/lazy.ts";
import type { Options as CsvParseOptions } from "csv-parse";
import { defineFormat, definePlugin, opt, typeName, type Field, type Row, type SqlType } from "../../core/plugin-api/index.ts";
import { parseTimestampText } from "../shared/time.ts";
import { fromJsonValue } from "../shared/nested-json.ts";
import { compileCsvBytesEncoder, compileCsvLineEncoder, csvHeaderLine, csvUnwritable } from "./writer.ts";

const oneChar = (name: string) => ({
  ...opt.string({ description: "" }),
  parse(raw: unknown): string {
    const s = typeof raw === "string" ? raw : String(raw);
    const v = s === "\\t" ? "\t" : s;
    if (v.length !== 1) throw new Error(`'${s}' is not one character; ${name} is a single character ('\\t' for a tab)`);
    return v;
  },
});

export const csvOptions = {
  delimiter: { ...oneChar("the delimiter"), default: ",", description: "Field separator, one character (default ',', '\\t' for a tab)" },
  quote: { ...oneChar("the quote"), default: '"', description: "Quote character (default '\"')" },
  escape: { ...oneChar("the escape"), default: '"', description: "Escapes a quote inside a quoted field (default '\"', i.e. doubled quotes)" },
  header: opt.boolean({
    description: "Files: whether the first row names the columns (default true: read files match columns by name, written files start with one). Records: not allowed",
  }),
};

export interface CsvOptionValues {
  delimiter: string;
  quote: string;
  escape: string;
  header?: boolean;
}

/** csv-parse's settings for these options; fields come as text, or null when empty and unquoted. */
export function csvParseOptions(o: CsvOptionValues): CsvParseOptions {
  return {
    delimiter: o.delimiter,
    quote: o.quote,
    escape: o.escape,
    relax_column_count: true,
    skip_empty_lines: true,
    cast: (value, context) => (value === "" && !context.quoting ? null : value),
  };
}

type Convert = (text: string) => unknown;

const BOOLEAN: Record<string, boolean> = { true: true, t: true, yes: true, y: true, "1": true, false: false, f: false, no: false, n: false, "0": false };

/** Text of a CSV field into the engine's value of a column type; throws saying what the text should look like. */
function converter(type: SqlType): Convert {
  switch (type.kind) {
    case "string":
      return (s) => s;
    case "json":
      return (s) => {
        JSON.parse(s);
        return s;
      };
    case "boolean":
      return (s) => {
        const b = BOOLEAN[s.trim().toLowerCase()];
        if (b === undefined) throw new Error(`'${s}' is not a boolean (true/false)`);
        return b;
      };
    case "int":
      return (s) => {
        const t = s.trim();
        if (!/^[+-]?\d+$/.test(t)) throw new Error(`'${s}' is not a whole number`);
        const n = Number(t);
        if (!Number.isSafeInteger(n)) throw new Error(`'${s}' is beyond ±2^53, which Runnel's integers hold exactly`);
        return n;
      };
    case "float":
    case "decimal":
      return (s) => {
        const t = s.trim().toLowerCase();
        if (/^[+-]?inf(inity)?$/.test(t)) return t.startsWith("-") ? -Infinity : Infinity;
        if (t === "nan") return NaN;
        const n = Number(t);
        if (t === "" || !Number.isFinite(n)) throw new Error(`'${s}' is not a number`);
        return n;
      };
    case "timestamp":
      return (s) => {
        const us = parseTimestampText(s.trim());
        if (us === null) throw new Error(`'${s}' is not a timestamp; write it like 2024-01-01T12:00:00Z or 2024-01-01 12:00:00`);
        return us;
      };
    case "interval":
      return (s) => {
        const t = s.trim();
        if (!/^[+-]?\d+$/.test(t)) throw new Error(`'${s}' is not an interval in microseconds`);
        return Number(t);
      };
    case "bytes":
      return (s) => Buffer.from(s, "utf8");
    case "array":
    case "struct":
    case "map":
      return (s) => fromJsonValue(type, JSON.parse(s));
  }
}

/**
 * Builds rows of `fields` from parsed records. With a header, columns are
 * matched to its names (case-insensitively when not exact); a column the
 * header lacks is NULL, or an error when it is NOT NULL. Without one, fields
 * fill the columns in order.
 */
export function csvRowBuilder(fields: Field[], header: string[] | null): (record: (string | null)[]) => Row {
  let at: number[];
  if (header) {
    at = fields.map((f) => {
      const exact = header.indexOf(f.name);
      return exact >= 0 ? exact : header.findIndex((h) => h.trim().toLowerCase() === f.name.toLowerCase());
    });
    const missing = fields.filter((f, i) => at[i]! < 0 && !f.nullable);
    if (missing.length > 0) {
      throw new Error(`the CSV header (${header.join(", ")}) has no column ${missing.map((f) => `'${f.name}'`).join(", ")}, declared NOT NULL`);
    }
  } else {
    at = fields.map((_, i) => i);
  }
  const convert = fields.map((f) => converter(f.type));
  const width = fields.length;
  return (record) => {
    const row: Row = new Array(width);
    for (let i = 0; i < width; i++) {
      const j = at[i]!;
      const v = j >= 0 ? record[j] : null;
      if (v === null || v === undefined) {
        if (!fields[i]!.nullable) throw new Error(`column '${fields[i]!.name}' is NOT NULL but the record has no value for it`);
        row[i] = null;
        continue;
      }
      try {
        row[i] = convert[i]!(v);
      } catch (err) {
        throw new Error(`column '${fields[i]!.name}' (${typeName(fields[i]!.type)}): ${(err as Error).message}`);
      }
    }
    return row;
  };
}

requirePackages("format-csv", import.meta.url, ["csv-parse"]);

const decoder = new TextDecoder();

export const csv = defineFormat({
  name: "csv",
  description: "Comma-separated values (RFC 4180): whole files with a header row through connector 'filesystem', else one row per record (read and written)",
  options: csvOptions,
  validate({ options: o, table, fields }) {
    if (o.quote === o.delimiter) throw new Error("format 'csv': options 'quote' and 'delimiter' are the same character; give different ones");
    if (table.role === "sink") {
      for (const [name, c] of [["delimiter", o.delimiter], ["quote", o.quote], ["escape", o.escape]] as const) {
        if (c === "\r" || c === "\n") throw new Error(`format 'csv': option '${name}' is a line break, which ends CSV rows; give another character`);
      }
      if (o.escape === o.delimiter) throw new Error("format 'csv': options 'escape' and 'delimiter' are the same character; give different ones");
      const unwritable = fields.map(csvUnwritable).filter((why) => why !== null);
      if (unwritable.length > 0) throw new Error(`format 'csv' has no exact text for some columns: ${unwritable.join("; ")}`);
    }
    if (table.connector !== "filesystem" && o.header === true) {
      throw new Error(`format 'csv': option 'header' applies to files (connector 'filesystem'); each record of connector '${table.connector}' is one row, in column order`);
    }
  },
  deserializer({ options, fields }) {
    const parseOptions = csvParseOptions(options as CsvOptionValues);
    const build = csvRowBuilder(fields, null);
    // csv-parse loads when a table first reads CSV records (`deserializer` is synchronous, hence require).
    const parseSync = requireFor("format-csv", () => require("csv-parse/sync") as typeof import("csv-parse/sync")).parse;
    return {
      deserialize(data) {
        const text = typeof data === "string" ? data : decoder.decode(data);
        const records = parseSync(text, parseOptions) as (string | null)[][];
        if (records.length === 0) return null;
        if (records.length > 1) throw new Error(`the record holds ${records.length} CSV rows; one record is one row`);
        return build(records[0]!);
      },
    };
  },
  serializer({ options, fields, table }) {
    const o = options as CsvOptionValues;
    const encodeLine = compileCsvLineEncoder(fields, o);
    // Files open with the column names unless header = false; a record (a Kafka message) is one row without them.
    const fileHeader = table?.connector === "filesystem" && o.header !== false ? csvHeaderLine(fields, o) : undefined;
    return { serialize: encodeLine, encodeInto: compileCsvBytesEncoder(fields, o) ?? undefined, fileHeader };
  },
});

export default definePlugin({ name: "format-csv", version: "0.1.0", formats: [csv] });
