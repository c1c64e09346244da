import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { field, RowOp, t, type Field } from "../../core/plugin-api/index.ts";
import plugin, { singleFile, SingleFileReader, type PreparedWrite } from "../../plugins/connector-single-file/index.ts";
import { debeziumJson } from "../../plugins/format-debezium-json/index.ts";
import { json } from "../../plugins/format-json/index.ts";
import { coerce, drain, sinkContext, sourceContext } from "./kit.ts";

const dir = mkdtempSync(join(tmpdir(), "runnel-single-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const tmp = (name = "f") => join(dir, `${name}-${n++}.jsonl`);

const FIELDS: Field[] = [field("id", t.bigint(), false), field("name", t.string())];
const jsonReader = (fields = FIELDS) => json.deserializer!({ options: coerce(json.options, {}), fields });
const jsonWriter = (fields = FIELDS) => json.serializer!({ options: coerce(json.options, {}), fields });

function reader(path: string, opts: { chunk?: number; restored?: Record<string, unknown>; subtaskIndex?: number; badData?: "drop" | "fail" } = {}) {
  const { ctx, bad } = sourceContext(singleFile, {
    options: { path },
    fields: FIELDS,
    format: jsonReader(),
    restored: opts.restored,
    subtaskIndex: opts.subtaskIndex,
    parallelism: 2,
    badData: opts.badData,
  });
  return { reader: new SingleFileReader(ctx, opts.chunk), bad };
}

const line = (i: number) => JSON.stringify({ id: i, name: `name ${i} ${"é".repeat(i % 7)}` });

describe("single_file source", () => {
  test("is registered, needs a format, sink at parallelism 1 accepting updates", () => {
    expect(plugin.connectors!.map((c) => c.name)).toEqual(["single_file"]);
    expect(singleFile.needsFormat).toBe(true);
    expect(singleFile.sink!.maxParallelism).toBe(1);
    expect(singleFile.sink!.updating).toBe(true);
    expect(() => coerce(singleFile.options, {})).toThrow("path");
  });

  test("reads every line across small chunk boundaries, then ends", async () => {
    const path = tmp();
    const lines = Array.from({ length: 200 }, (_, i) => line(i));
    writeFileSync(path, lines.join("\n") + "\n");
    for (const chunk of [7, 16, 64, 1 << 20]) {
      const { reader: r } = reader(path, { chunk });
      expect(r.splits()).toEqual(["file"]);
      const out = await drain(r, Infinity, 37);
      expect(out.ended).toBe(true);
      expect(out.rows).toEqual(lines.map((l) => jsonReader().deserialize(l)!));
      expect(out.batches.every((b) => b.split === "file")).toBe(true);
    }
  });

  test("handles CRLF, blank lines and a last line without newline", async () => {
    const path = tmp();
    writeFileSync(path, `${line(1)}\r\n\n   \n${line(2)}\n${line(3)}`);
    const out = await drain(reader(path, { chunk: 8 }).reader);
    expect(out.rows.map((r) => r[0])).toEqual([1, 2, 3]);
  });

  test("reports bad lines as path:line and goes on", async () => {
    const path = tmp();
    writeFileSync(path, [line(1), "not json", line(3), '{"id": "x"}', "", line(6)].join("\n") + "\n");
    const { reader: r, bad } = reader(path, { chunk: 10 });
    const out = await drain(r);
    expect(out.rows.map((x) => x[0])).toEqual([1, 3, 6]);
    expect(bad.map((b) => b.position)).toEqual([`${path}:2`, `${path}:4`]);
    expect(bad[1]!.message).toContain('field `id`: expected BIGINT, got "x"');
    const failing = reader(path, { badData: "fail" }).reader;
    expect(() => failing.poll(100)).toThrow(`${path}:2`);
  });

  test("restores from a snapshot position", async () => {
    const path = tmp();
    const lines = Array.from({ length: 50 }, (_, i) => line(i));
    writeFileSync(path, lines.join("\n") + "\n");
    const first = reader(path, { chunk: 32 }).reader;
    const a = await drain(first, 17, 5);
    const snap = first.snapshot();
    expect(snap).toEqual({ file: { offset: Buffer.byteLength(lines.slice(0, 17).join("\n") + "\n"), line: 17 } });
    first.close();
    const { reader: second, bad } = reader(path, { chunk: 32, restored: snap });
    writeFileSync(path, [...lines.slice(0, 20), "bad", ...lines.slice(21)].join("\n") + "\n");
    const b = await drain(second);
    expect([...a.rows, ...b.rows].map((r) => r[0])).toEqual(lines.map((_, i) => i).filter((i) => i !== 20));
    expect(bad.map((x) => x.position)).toEqual([`${path}:21`]);
  });

  test("other subtasks own no split and end at once", async () => {
    const path = tmp();
    writeFileSync(path, line(1) + "\n");
    const { reader: r } = reader(path, { subtaskIndex: 1 });
    expect(r.splits()).toEqual([]);
    expect(await r.poll(10)).toEqual({ end: true });
    expect(r.snapshot()).toEqual({});
  });

  test("a missing file is an error naming the path and the option", () => {
    const path = join(dir, "nope.jsonl");
    expect(() => reader(path)).toThrow(`file '${path}' (option 'path') does not exist`);
  });

  test("a line longer than the chunk grows the buffer", async () => {
    const path = tmp();
    const long = JSON.stringify({ id: 1, name: "x".repeat(5000) });
    writeFileSync(path, `${line(0)}\n${long}\n${line(2)}\n`);
    const out = await drain(reader(path, { chunk: 64 }).reader);
    expect(out.rows.map((r) => r[0])).toEqual([0, 1, 2]);
    expect((out.rows[1]![1] as string).length).toBe(5000);
  });
});

describe("single_file sink (two-phase commit)", () => {
  const create = (path: string, restored?: unknown, format = jsonWriter(), updating = false) =>
    singleFile.sink!.create(sinkContext(singleFile, { options: { path }, fields: FIELDS, format, restored, updating })) as any;
  const batch = (ids: number[]) => ({ rows: ids.map((i) => [i, `n${i}`]), times: ids.map(() => 0) });
  const text = (ids: number[]) => ids.map((i) => `{"id":${i},"name":"n${i}"}\n`).join("");

  test("creates the file (and parent dirs) empty; data shows only at commit", async () => {
    const path = join(dir, "nested", "deeper", "out.jsonl");
    const w = await create(path);
    expect(readFileSync(path, "utf8")).toBe("");
    w.write(batch([1, 2]));
    expect(readFileSync(path, "utf8")).toBe("");
    const p1 = w.prepareCommit(1) as PreparedWrite;
    expect(p1).toEqual({ offset: 0, data: text([1, 2]) });
    expect(readFileSync(path, "utf8")).toBe("");
    w.commit(1, p1);
    expect(readFileSync(path, "utf8")).toBe(text([1, 2]));
  });

  test("a second prepare before the first commit gets the right offset; commits are idempotent", async () => {
    const path = tmp("sink");
    const w = await create(path);
    w.write(batch([1]));
    const p1 = w.prepareCommit(1) as PreparedWrite;
    w.write(batch([2, 3]));
    const p2 = w.prepareCommit(2) as PreparedWrite;
    expect(p2.offset).toBe(Buffer.byteLength(text([1])));
    expect(w.snapshot()).toEqual({ nextOffset: Buffer.byteLength(text([1, 2, 3])) });
    w.commit(1, p1);
    w.commit(1, p1);
    expect(readFileSync(path, "utf8")).toBe(text([1]));
    w.commit(2, p2);
    w.commit(2, p2);
    expect(readFileSync(path, "utf8")).toBe(text([1, 2, 3]));
    // An empty checkpoint changes nothing.
    const p3 = w.prepareCommit(3) as PreparedWrite;
    expect(p3).toEqual({ offset: Buffer.byteLength(text([1, 2, 3])), data: "" });
    w.commit(3, p3);
    expect(readFileSync(path, "utf8")).toBe(text([1, 2, 3]));
    // A stale commit arriving after a later one is ignored.
    w.commit(1, p1);
    expect(readFileSync(path, "utf8")).toBe(text([1, 2, 3]));
  });

  test("restoring and re-committing gives no duplicates and drops uncommitted output", async () => {
    const path = tmp("sink");
    const w = await create(path);
    w.write(batch([1, 2]));
    const p1 = w.prepareCommit(1);
    w.commit(1, p1);
    w.write(batch([3]));
    const p2 = w.prepareCommit(2);
    const s2 = w.snapshot();
    w.commit(2, p2);
    w.write(batch([4]));
    const p3 = w.prepareCommit(3);
    w.commit(3, p3); // checkpoint 3 was committed but, say, not recorded as complete: restore from 2

    // Crash: restore from checkpoint 2 (state s2, prepared p2), then replay from there.
    const r = await create(path, JSON.parse(JSON.stringify(s2)));
    r.commit(2, JSON.parse(JSON.stringify(p2)));
    expect(readFileSync(path, "utf8")).toBe(text([1, 2, 3]));
    r.write(batch([4, 5]));
    const q3 = r.prepareCommit(3);
    r.commit(3, q3);
    expect(readFileSync(path, "utf8")).toBe(text([1, 2, 3, 4, 5]));

    // Restoring from checkpoint 1 after a crash between prepare(2) and commit(2) also works.
    const path2 = tmp("sink");
    const w2 = await create(path2);
    w2.write(batch([1]));
    const a1 = w2.prepareCommit(1);
    const b1 = w2.snapshot();
    w2.commit(1, a1);
    w2.write(batch([2]));
    w2.prepareCommit(2);
    const r2 = await create(path2, b1);
    expect(readFileSync(path2, "utf8")).toBe(text([1])); // restoring does not truncate the committed file
    r2.commit(1, a1);
    r2.write(batch([2]));
    r2.commit(2, r2.prepareCommit(2));
    expect(readFileSync(path2, "utf8")).toBe(text([1, 2]));
  });

  test("a file shorter than the committed offset is reported as inconsistent", async () => {
    const path = tmp("sink");
    const w = await create(path);
    w.write(batch([1, 2]));
    const p1 = w.prepareCommit(1);
    w.write(batch([3]));
    const p2 = w.prepareCommit(2);
    w.commit(1, p1);
    writeFileSync(path, "");
    expect(() => w.commit(2, p2)).toThrow("inconsistent");
  });

  test("writes updating streams through debezium_json", async () => {
    const path = tmp("sink");
    const format = debeziumJson.serializer!({ options: coerce(debeziumJson.options, {}), fields: FIELDS });
    const w = await create(path, undefined, format, true);
    w.write({
      rows: [[1, "a"], [1, "b"], [1, "b"]],
      times: [0, 0, 0],
      ops: [RowOp.Insert, RowOp.Update, RowOp.Delete],
      before: [null, [1, "a"], [1, "b"]],
    });
    w.commit(1, w.prepareCommit(1));
    const lines = readFileSync(path, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.op)).toEqual(["c", "u", "d"]);
    expect(lines[1].before).toEqual({ id: 1, name: "a" });
    expect(existsSync(path)).toBe(true);
  });
});
