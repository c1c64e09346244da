/**
 * `stdout`: a sink printing one record per line to standard output, encoded by
 * the table's format, or else as a JSON object keyed by column name (with
 * Debezium-style {before, after, op} envelopes for updating streams).
 */
import { defineConnector, definePlugin, RowOp, type Batch, type Row, type SinkContext, type SinkWriter } from "../../core/plugin-api/index.ts";
import { compileObjectEncoder } from "../format-json/codec.ts";

/** Where the text goes: process.stdout, or anything stream-like (for tests). */
export interface TextOut {
  write(text: string): boolean | unknown;
  once?(event: "drain", listener: () => void): unknown;
}

const decoder = new TextDecoder();

export function createStdoutWriter(ctx: SinkContext<Record<string, never>>, out: TextOut = process.stdout): SinkWriter {
  let encode: (row: Row, op: RowOp | undefined, before: Row | null | undefined) => string;
  const format = ctx.format;
  if (format) {
    encode = (row, op, before) => {
      const e = format.serialize(row, op, before);
      return typeof e === "string" ? e : decoder.decode(e);
    };
  } else {
    const obj = compileObjectEncoder(ctx.fields, "rfc3339");
    encode = (row, op, before) => {
      if (op === undefined) return JSON.stringify(obj(row));
      if (op === RowOp.Delete) return JSON.stringify({ before: obj(before ?? row), after: null, op: "d" });
      if (op === RowOp.Update) return JSON.stringify({ before: before ? obj(before) : null, after: obj(row), op: "u" });
      return JSON.stringify({ before: null, after: obj(row), op: "c" });
    };
  }
  return {
    write(batch: Batch) {
      const { rows, ops, before } = batch;
      if (rows.length === 0) return;
      let text = "";
      for (let i = 0; i < rows.length; i++) text += encode(rows[i]!, ops?.[i], before?.[i]) + "\n";
      // Respect backpressure of a slow pipe.
      if (out.write(text) === false && out.once) return new Promise<void>((resolve) => out.once!("drain", resolve));
    },
  };
}

export const stdout = defineConnector({
  name: "stdout",
  description: "Prints each record as a line on standard output",
  options: {},
  sink: {
    create: (ctx) => createStdoutWriter(ctx as SinkContext<Record<string, never>>),
    updating: true,
  },
});

export default definePlugin({ name: "connector-stdout", version: "0.1.0", connectors: [stdout] });
