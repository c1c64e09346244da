import { describe, expect, test } from "bun:test";
import { field, t, type Row } from "../../core/plugin-api/index.ts";
import plugin, { impulse } from "../../plugins/connector-impulse/index.ts";
import { coerce, createReader, drain } from "./kit.ts";

describe("impulse connector", () => {
  test("is registered by the plugin with Arroyo's columns", () => {
    expect(plugin.connectors!.map((c) => c.name)).toEqual(["impulse"]);
    const cols = impulse.columns!(coerce(impulse.options, { event_rate: "10" }));
    expect(cols.map((c) => [c.name, c.type.kind, c.nullable])).toEqual([
      ["counter", "int", false],
      ["subtask_index", "int", false],
      ["timestamp", "timestamp", false],
    ]);
    expect(() => coerce(impulse.options, {})).toThrow("event_rate");
  });

  test("counts per subtask with synthetic event times from start_time", async () => {
    const { reader } = await createReader(impulse, {
      options: { event_rate: "0", message_count: "5", event_time_interval: "10ms", start_time: "2024-01-01T00:00:00Z" },
      subtaskIndex: 1,
      parallelism: 2,
    });
    expect(reader.splits()).toEqual(["impulse-1"]);
    const { rows, times, ended, batches } = await drain(reader);
    const start = Date.UTC(2024, 0, 1) * 1000;
    expect(ended).toBe(true);
    expect(rows).toEqual([0, 1, 2, 3, 4].map((c) => [c, 1, start + c * 10_000]));
    expect(times).toEqual(rows.map((r) => r[2] as number));
    expect(batches.every((b) => b.split === "impulse-1")).toBe(true);
  });

  test("without start_time, every subtask starts its event times at the job's start, not at its own clock", async () => {
    // Subtasks start milliseconds apart (more across worker processes): each reading its own clock shifted its
    // split's times against the others', which split sessions and windows at parallelism > 1.
    const jobStart = 1_600_000_000_000_000;
    const times: number[][] = [];
    for (const subtaskIndex of [0, 1]) {
      const { reader } = await createReader(impulse, {
        options: { event_rate: "0", message_count: "3", event_time_interval: "10" },
        subtaskIndex,
        parallelism: 2,
        startTimeMicros: jobStart,
      });
      times.push((await drain(reader)).times);
    }
    expect(times).toEqual([
      [jobStart, jobStart + 10, jobStart + 20],
      [jobStart, jobStart + 10, jobStart + 20],
    ]);
  });

  test("bare event_time_interval is microseconds; start_time may be µs", async () => {
    const { reader } = await createReader(impulse, {
      options: { event_rate: "0", message_count: "3", event_time_interval: "7", start_time: "1000" },
    });
    const { rows } = await drain(reader);
    expect(rows.map((r) => r[2])).toEqual([1000, 1007, 1014]);
  });

  test("without an interval the timestamp is the wall clock", async () => {
    const before = Date.now() * 1000;
    const { reader } = await createReader(impulse, { options: { event_rate: "0", message_count: "10" } });
    const { rows, times } = await drain(reader);
    const after = Date.now() * 1000;
    expect(rows.length).toBe(10);
    for (const ts of times) {
      expect(ts).toBeGreaterThanOrEqual(before);
      expect(ts).toBeLessThanOrEqual(after);
    }
  });

  test("restores the counter and start from a snapshot", async () => {
    const opts = { event_rate: "0", message_count: "10", event_time_interval: "1s" };
    const first = await createReader(impulse, { options: opts });
    const a = await drain(first.reader, 4);
    const snap = first.reader.snapshot();
    expect(snap).toEqual({ "impulse-0": { v: 1, counter: 4, start: expect.any(Number), splits: 1 } });
    const second = await createReader(impulse, { options: opts, restored: snap });
    const b = await drain(second.reader);
    expect(b.ended).toBe(true);
    expect([...a.rows, ...b.rows].map((r) => r[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const start = (snap["impulse-0"] as { start: number }).start;
    expect(b.rows[0]![2]).toBe(start + 4_000_000);
  });

  test("restored at parallelism 1 from 2 subtasks, both counters continue to message_count on the one subtask", async () => {
    const opts = { event_rate: "0", message_count: "50", event_time_interval: "1ms", start_time: "0" };
    const before: Row[] = [];
    const snapshots: Record<string, unknown> = {};
    for (let i = 0; i < 2; i++) {
      const first = await createReader(impulse, { options: opts, subtaskIndex: i, parallelism: 2 });
      before.push(...(await drain(first.reader, 10 + 20 * i)).rows);
      Object.assign(snapshots, first.reader.snapshot());
    }
    const { reader } = await createReader(impulse, { options: opts, subtaskIndex: 0, parallelism: 1, restored: snapshots });
    expect(reader.splits()).toEqual(["impulse-0", "impulse-1"]);
    const after = await drain(reader, Infinity, 7);
    expect(after.ended).toBe(true);
    const all = [...before, ...after.rows].map((r) => `${r[1]}:${r[0]}:${r[2]}`).sort();
    const expected = [0, 1].flatMap((s) => Array.from({ length: 50 }, (_, c) => `${s}:${c}:${c * 1000}`)).sort();
    expect(all).toEqual(expected);
    expect(reader.snapshot()).toEqual({
      "impulse-0": { v: 1, counter: 50, start: 0, splits: 2 },
      "impulse-1": { v: 1, counter: 50, start: 0, splits: 2 },
    });
  });

  test("restored at parallelism 3 from 1 subtask, the others have no counter: bounded they end, unbounded they idle", async () => {
    const restored = { "impulse-0": { v: 1, counter: 3, start: 0, splits: 1 } };
    for (const [i, options] of [
      [1, { event_rate: "0", message_count: "5" }],
      [2, { event_rate: "0" }],
    ] as const) {
      const { reader } = await createReader(impulse, { options, subtaskIndex: i, parallelism: 3, restored });
      expect(reader.splits()).toEqual([]);
      expect(await reader.poll(10)).toEqual(i === 1 ? { end: true } : { batches: [] });
      expect(reader.snapshot()).toEqual({});
    }
    const { reader } = await createReader(impulse, { options: { event_rate: "0", message_count: "5" }, parallelism: 3, restored });
    expect((await drain(reader)).rows.map((r) => r[0])).toEqual([3, 4]);
  });

  test("fills only the declared columns, in declared order", async () => {
    const { reader } = await createReader(impulse, {
      options: { event_rate: "0", message_count: "3" },
      fields: [field("subtask_index", t.ubigint(), false), field("counter", t.ubigint(), false)],
      subtaskIndex: 3,
      parallelism: 4,
    });
    expect((await drain(reader)).rows).toEqual([
      [3, 0],
      [3, 1],
      [3, 2],
    ]);
  });

  test("paces events at event_rate", async () => {
    const { reader } = await createReader(impulse, { options: { event_rate: "200" } });
    const started = performance.now();
    const { rows } = await drain(reader, 40);
    const elapsed = performance.now() - started;
    expect(rows.length).toBe(40);
    // 40 events at 200/s: the 40th is due after 195 ms.
    expect(elapsed).toBeGreaterThan(150);
    expect(elapsed).toBeLessThan(1500);
    await reader.close?.();
  });

  test("a very high rate is not the bottleneck", async () => {
    const { reader } = await createReader(impulse, { options: { event_rate: "100000000", message_count: "1000000" } });
    const started = performance.now();
    let n = 0;
    for (;;) {
      const p = await reader.poll(4096);
      if ("end" in p) break;
      for (const b of p.batches) n += b.rows.length;
    }
    expect(n).toBe(1_000_000);
    expect(performance.now() - started).toBeLessThan(1500);
  });

  test("rejects a bad start_time at validation, naming the option", () => {
    const options = coerce(impulse.options, { event_rate: "1", start_time: "yesterday" });
    expect(() => impulse.validate!({ name: "t", options, fields: [], role: "source" })).toThrow("start_time");
  });
});
