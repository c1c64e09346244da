import { describe, expect, test } from "bun:test";
import { field, RowOp, t, type Field } from "../../core/plugin-api/index.ts";
import plugin, { createStdoutWriter, stdout } from "../../plugins/connector-stdout/index.ts";
import { json } from "../../plugins/format-json/index.ts";
import { coerce, sinkContext } from "./kit.ts";

const FIELDS: Field[] = [field("id", t.bigint()), field("at", t.timestamp()), field("s", t.struct([field("x", t.timestamp())]))];
const TS = Date.UTC(2024, 0, 1) * 1000;

function capture() {
  const chunks: string[] = [];
  return { chunks, out: { write: (s: string) => (chunks.push(s), true) } };
}

describe("stdout connector", () => {
  test("is a sink only, registered by its plugin", () => {
    expect(plugin.connectors!.map((c) => c.name)).toEqual(["stdout"]);
    expect(stdout.source).toBeUndefined();
    expect(stdout.sink!.updating).toBe(true);
  });

  test("without a format writes JSON objects with RFC 3339 timestamps, one write per batch", async () => {
    const { chunks, out } = capture();
    const w = createStdoutWriter(sinkContext(stdout, { fields: FIELDS }), out);
    await w.write({ rows: [[1, TS, { x: TS + 1 }], [2, null, null]], times: [0, 0] });
    expect(chunks).toEqual([
      '{"id":1,"at":"2024-01-01T00:00:00Z","s":{"x":"2024-01-01T00:00:00.000001Z"}}\n{"id":2,"at":null,"s":null}\n',
    ]);
  });

  test("without a format writes updating streams as change envelopes", async () => {
    const { chunks, out } = capture();
    const w = createStdoutWriter(sinkContext(stdout, { fields: FIELDS.slice(0, 1), updating: true }), out);
    await w.write({ rows: [[1], [2], [2]], times: [0, 0, 0], ops: [RowOp.Insert, RowOp.Update, RowOp.Delete], before: [null, [1], [2]] });
    expect(chunks.join("").trim().split("\n").map((l) => JSON.parse(l))).toEqual([
      { before: null, after: { id: 1 }, op: "c" },
      { before: { id: 1 }, after: { id: 2 }, op: "u" },
      { before: { id: 2 }, after: null, op: "d" },
    ]);
  });

  test("uses the table's format when given", async () => {
    const { chunks, out } = capture();
    const format = json.serializer!({ options: coerce(json.options, { timestamp_format: "unix_millis" }), fields: FIELDS });
    const w = createStdoutWriter(sinkContext(stdout, { fields: FIELDS, format }), out);
    await w.write({ rows: [[1, TS, null]], times: [0] });
    expect(chunks).toEqual(['{"id":1,"at":1704067200000,"s":null}\n']);
  });

  test("waits for drain when the output is full", async () => {
    let drain: (() => void) | undefined;
    const out = { write: () => false, once: (_: "drain", f: () => void) => void (drain = f) };
    const w = createStdoutWriter(sinkContext(stdout, { fields: FIELDS }), out);
    let done = false;
    const p = Promise.resolve(w.write({ rows: [[1, null, null]], times: [0] })).then(() => (done = true));
    await Bun.sleep(5);
    expect(done).toBe(false);
    drain!();
    await p;
    expect(done).toBe(true);
  });
});
