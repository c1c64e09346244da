import { describe, expect, test } from "bun:test";
import { field, t, type Row } from "../../core/plugin-api/index.ts";
import plugin, { nexmark } from "../../plugins/connector-nexmark/index.ts";
import { coerce, createReader, drain } from "./kit.ts";

const BASE = "2024-01-01T00:00:00Z";
const BASE_US = Date.UTC(2024, 0, 1) * 1000;

async function generate(options: Record<string, string>, parallelism = 1) {
  const rows: Row[] = [];
  const times: number[] = [];
  for (let i = 0; i < parallelism; i++) {
    const { reader } = await createReader(nexmark, { options, subtaskIndex: i, parallelism });
    const out = await drain(reader);
    expect(out.ended).toBe(true);
    rows.push(...out.rows);
    times.push(...out.times);
  }
  return { rows, times };
}

const unthrottled = (extra: Record<string, string> = {}) => ({ event_rate: "0", base_time: BASE, ...extra });

describe("nexmark connector", () => {
  test("declares Arroyo's struct columns", () => {
    expect(plugin.connectors!.map((c) => c.name)).toEqual(["nexmark"]);
    const cols = nexmark.columns!(coerce(nexmark.options, {}));
    expect(cols.map((c) => c.name)).toEqual(["person", "auction", "bid"]);
    expect(cols.every((c) => c.nullable && c.type.kind === "struct")).toBe(true);
    const names = (i: number) => (cols[i]!.type as { fields: { name: string }[] }).fields.map((f) => f.name);
    expect(names(0)).toEqual(["id", "name", "email_address", "credit_card", "city", "state", "datetime", "extra"]);
    expect(names(1)).toEqual([
      "id", "item_name", "description", "initial_bid", "reserve", "datetime", "expires", "seller", "category", "extra",
    ]);
    expect(names(2)).toEqual(["auction", "bidder", "price", "channel", "url", "datetime", "extra"]);
  });

  test("persons, auctions and bids come 1:3:46, exactly one column set per row", async () => {
    const { rows } = await generate(unthrottled({ message_count: "5000" }));
    expect(rows.length).toBe(5000);
    let persons = 0;
    let auctions = 0;
    let bids = 0;
    for (const r of rows) {
      expect(r.filter((v) => v !== null).length).toBe(1);
      if (r[0]) persons++;
      if (r[1]) auctions++;
      if (r[2]) bids++;
    }
    expect([persons, auctions, bids]).toEqual([100, 300, 4600]);
  });

  test("ids grow with the event number and bids reference recent auctions and persons", async () => {
    const { rows } = await generate(unthrottled({ message_count: "20000", seed: "7" }));
    const personIds = rows.filter((r) => r[0]).map((r) => (r[0] as { id: number }).id);
    const auctionIds = rows.filter((r) => r[1]).map((r) => (r[1] as { id: number }).id);
    expect(personIds.slice(0, 3)).toEqual([1000, 1001, 1002]);
    expect(auctionIds.slice(0, 4)).toEqual([1000, 1001, 1002, 1003]);
    let maxAuction = 0;
    let maxPerson = 0;
    let hot = 0;
    let bids = 0;
    for (const r of rows) {
      if (r[0]) maxPerson = (r[0] as { id: number }).id;
      if (r[1]) maxAuction = (r[1] as { id: number }).id;
      const bid = r[2] as { auction: number; bidder: number; price: number; channel: string; url: string } | null;
      if (!bid) continue;
      expect(bid.auction).toBeGreaterThanOrEqual(Math.max(1000, maxAuction - 100));
      expect(bid.auction).toBeLessThanOrEqual(maxAuction + 10);
      expect(bid.bidder).toBeGreaterThanOrEqual(1000);
      expect(bid.bidder).toBeLessThanOrEqual(maxPerson + 10);
      expect(Number.isInteger(bid.price) && bid.price >= 100).toBe(true);
      expect(bid.channel.length).toBeGreaterThan(0);
      expect(bid.url.startsWith("https://")).toBe(true);
      bids++;
      if (bid.auction === Math.floor((maxAuction - 1000) / 2) * 2 + 1000) hot++;
    }
    // About half of the bids go to the hot auction of the moment.
    expect(hot / bids).toBeGreaterThan(0.45);
    expect(hot / bids).toBeLessThan(0.6);
  });

  test("event times are base + n × 1e6/event_rate, in the struct and natively", async () => {
    const { reader } = await createReader(nexmark, { options: { event_rate: "1000000", base_time: BASE, message_count: "100" } });
    const { rows, times } = await drain(reader);
    expect(times).toEqual(rows.map((_, n) => BASE_US + n));
    for (let n = 0; n < rows.length; n++) {
      const obj = rows[n]!.find((v) => v !== null) as { datetime: number };
      expect(obj.datetime).toBe(times[n]!);
    }
    const auction = rows[1]![1] as { datetime: number; expires: number };
    expect(auction.expires).toBeGreaterThan(auction.datetime);
  });

  test("the same seed gives the same rows; another seed others", async () => {
    const a = await generate(unthrottled({ message_count: "3000", seed: "42" }));
    const b = await generate(unthrottled({ message_count: "3000", seed: "42" }));
    const c = await generate(unthrottled({ message_count: "3000", seed: "43" }));
    expect(b.rows).toEqual(a.rows);
    expect(JSON.stringify(c.rows)).not.toBe(JSON.stringify(a.rows));
  });

  test("parallelism 1 and 3 give the same multiset of events", async () => {
    const one = await generate(unthrottled({ message_count: "4001", seed: "5" }), 1);
    const three = await generate(unthrottled({ message_count: "4001", seed: "5" }), 3);
    expect(three.rows.length).toBe(4001);
    const key = (rows: Row[]) => rows.map((r) => JSON.stringify(r)).sort();
    expect(key(three.rows)).toEqual(key(one.rows));
  });

  test("message_count and runtime bound the total", async () => {
    expect((await generate(unthrottled({ message_count: "1234" }), 2)).rows.length).toBe(1234);
    const { reader } = await createReader(nexmark, {
      options: { event_rate: "100000", runtime: "0.05", base_time: BASE },
    });
    const started = performance.now();
    const out = await drain(reader);
    expect(out.rows.length).toBe(5000);
    // Throttled to 100k/s: 5000 events take about 50 ms of wall clock.
    expect(performance.now() - started).toBeGreaterThan(30);
    const both = await generate({ event_rate: "100000", runtime: "1s", message_count: "70", base_time: BASE });
    expect(both.rows.length).toBe(70);
    const options = coerce(nexmark.options, { event_rate: "0", runtime: "10s" });
    expect(() => nexmark.validate!({ name: "t", options, fields: [], role: "source" })).toThrow("runtime");
  });

  test("restores from a snapshot without gaps or duplicates", async () => {
    const opts = unthrottled({ message_count: "3000", seed: "9" });
    const full = await generate(opts, 2);
    const firstRows: Row[][] = [];
    const snapshots: Record<string, unknown> = {};
    for (let i = 0; i < 2; i++) {
      const first = await createReader(nexmark, { options: opts, subtaskIndex: i, parallelism: 2 });
      firstRows.push((await drain(first.reader, 700)).rows);
      const snap = first.reader.snapshot();
      expect(snap).toEqual({ [`nexmark-${i}`]: { v: 1, next: i + 1400, base: BASE_US, splits: 2 } });
      Object.assign(snapshots, snap);
    }
    // As the engine does, every subtask sees the positions of all splits.
    const restoredRows: Row[] = [];
    for (let i = 0; i < 2; i++) {
      const second = await createReader(nexmark, { options: opts, subtaskIndex: i, parallelism: 2, restored: snapshots });
      restoredRows.push(...firstRows[i]!, ...(await drain(second.reader)).rows);
    }
    expect(restoredRows).toEqual(full.rows);
  });

  test("restored at parallelism 1 from 2 splits, the subtask reads both and ends with exactly the rest", async () => {
    const opts = unthrottled({ message_count: "3001", seed: "3" });
    const full = await generate(opts, 1);
    const before: Row[] = [];
    const snapshots: Record<string, unknown> = {};
    for (let i = 0; i < 2; i++) {
      const first = await createReader(nexmark, { options: opts, subtaskIndex: i, parallelism: 2 });
      before.push(...(await drain(first.reader, 500 + 300 * i)).rows);
      Object.assign(snapshots, first.reader.snapshot());
    }
    const { reader } = await createReader(nexmark, { options: opts, subtaskIndex: 0, parallelism: 1, restored: snapshots });
    expect(reader.splits()).toEqual(["nexmark-0", "nexmark-1"]);
    const after = await drain(reader, Infinity, 100);
    expect(after.ended).toBe(true);
    expect(new Set(after.batches.map((b) => b.split))).toEqual(new Set(["nexmark-0", "nexmark-1"]));
    const key = (rows: Row[]) => rows.map((r) => JSON.stringify(r)).sort();
    expect(key([...before, ...after.rows])).toEqual(key(full.rows));
    // Both splits stay in the state, finished or not, with the count fixed at the first start.
    expect(reader.snapshot()).toEqual({
      "nexmark-0": { v: 1, next: 3002, base: BASE_US, splits: 2 },
      "nexmark-1": { v: 1, next: 3001, base: BASE_US, splits: 2 },
    });
  });

  test("restored at parallelism 3 from 1 split, the extra subtasks have no split and end at once", async () => {
    const opts = unthrottled({ message_count: "2000", seed: "3" });
    const full = await generate(opts, 1);
    const first = await createReader(nexmark, { options: opts });
    const before = (await drain(first.reader, 800)).rows;
    const restored = first.reader.snapshot();
    const after: Row[] = [];
    for (let i = 0; i < 3; i++) {
      const { reader } = await createReader(nexmark, { options: opts, subtaskIndex: i, parallelism: 3, restored });
      expect(reader.splits()).toEqual(i === 0 ? ["nexmark-0"] : []);
      const out = await drain(reader);
      expect(out.ended).toBe(true);
      after.push(...out.rows);
      expect(Object.keys(reader.snapshot())).toEqual(i === 0 ? ["nexmark-0"] : []);
    }
    expect([...before, ...after]).toEqual(full.rows);
  });

  test("unbounded, a subtask without a split stays idle instead of ending", async () => {
    const restored = { "nexmark-0": { v: 1, next: 0, base: BASE_US, splits: 1 } };
    const { reader } = await createReader(nexmark, { options: unthrottled(), subtaskIndex: 1, parallelism: 2, restored });
    expect(reader.splits()).toEqual([]);
    expect(await reader.poll(100)).toEqual({ batches: [] });
  });

  test("positions written before splits were fixed (no count) restore as one split per entry", async () => {
    const opts = unthrottled({ message_count: "1000", seed: "1" });
    const full = await generate(opts, 1);
    const restored = { "nexmark-0": { next: 400, base: BASE_US }, "nexmark-1": { next: 401, base: BASE_US } };
    const { reader } = await createReader(nexmark, { options: opts, restored });
    const out = await drain(reader);
    const key = (rows: Row[]) => rows.map((r) => JSON.stringify(r)).sort();
    expect(key(out.rows)).toEqual(key(full.rows.slice(400)));
  });

  test("a checkpoint missing one of the splits is refused rather than regenerated", async () => {
    const restored = { "nexmark-1": { v: 1, next: 11, base: BASE_US, splits: 2 } };
    await expect(createReader(nexmark, { options: unthrottled(), restored })).rejects.toThrow("nexmark-0");
  });

  test("without base_time every subtask takes the job's start as its base, so their events interleave as one stream", async () => {
    // Subtasks start milliseconds apart (more across worker processes): each reading its own clock shifted one
    // split's event times against the other's, and session windows at parallelism 2 came out split (Nexmark q11:
    // 135,704 sessions where parallelism 1 had 73,814, of the same 1.84M bids).
    const jobStart = 1_600_000_000_000_000;
    const times: number[] = [];
    for (const subtaskIndex of [0, 1]) {
      const { reader } = await createReader(nexmark, { options: { event_rate: "0", message_count: "1000" }, subtaskIndex, parallelism: 2, startTimeMicros: jobStart });
      times.push(...(await drain(reader)).times);
    }
    expect(times.sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, n) => jobStart + n));
  });

  test("without base_time the base is the job's start (the wall clock), kept in the state", async () => {
    const before = Date.now() * 1000;
    const { reader } = await createReader(nexmark, { options: { event_rate: "0", message_count: "10" } });
    const base = (reader.snapshot()["nexmark-0"] as { base: number }).base;
    expect(base).toBeGreaterThanOrEqual(before);
    expect(base).toBeLessThanOrEqual(Date.now() * 1000);
  });

  test("fills only the declared columns", async () => {
    const cols = nexmark.columns!(coerce(nexmark.options, {}));
    const { reader } = await createReader(nexmark, {
      options: unthrottled({ message_count: "100" }),
      fields: [cols[2]!, field("person", cols[0]!.type)],
    });
    const { rows } = await drain(reader);
    expect(rows.length).toBe(100);
    expect(rows[0]).toEqual([null, expect.objectContaining({ id: 1000 })]);
    expect(rows[1]).toEqual([null, null]); // an auction, not declared
    expect(rows[10]![0]).toEqual(expect.objectContaining({ auction: expect.any(Number) }));
  });

  test("builds only the kinds the query reads, with the same numbering, ids and times", async () => {
    const options = unthrottled({ message_count: "3000", seed: "7" });
    const all = await generate(options, 2);
    for (const columnsRead of [[2], [0, 1]]) {
      const rows: Row[] = [];
      const times: number[] = [];
      for (let i = 0; i < 2; i++) {
        const { reader } = await createReader(nexmark, { options, subtaskIndex: i, parallelism: 2, columnsRead });
        const out = await drain(reader);
        rows.push(...out.rows);
        times.push(...out.times);
      }
      expect(times).toEqual(all.times);
      // Every row as the full reader's, with the unread kinds left null.
      const expected = all.rows.map((r) => r.map((v, c) => (columnsRead.includes(c) ? v : null)));
      expect(rows).toEqual(expected);
      expect(rows.filter((r) => r.some((v) => v !== null)).length).toBe(columnsRead.length === 1 ? 2760 : 240);
    }
  });

  test("with a pushed-down IS NOT NULL, leaves out the other kinds' rows and counts them; the rest as the full reader's", async () => {
    const options = unthrottled({ message_count: "3000", seed: "7" });
    const all = await generate(options, 1);
    for (const columns of [[2], [0, 1]]) {
      const { reader, metrics } = await createReader(nexmark, { options, columnsRead: columns, notNull: columns });
      const out = await drain(reader);
      const kept = all.rows.flatMap((r, i) => (columns.some((c) => r[c] !== null) ? [i] : []));
      expect(out.rows).toEqual(kept.map((i) => all.rows[i]));
      expect(out.times).toEqual(kept.map((i) => all.times[i]));
      expect(metrics.events_left_out).toBe(3000 - kept.length);
    }
  });

  test("leaves out a kind's padding only where the query reads its struct's other fields alone; every other value as the full reader's", async () => {
    const options = unthrottled({ message_count: "3000", seed: "7" });
    const all = await generate(options, 1);
    const { reader } = await createReader(nexmark, { options, fieldsRead: { 2: ["auction", "price"], 1: ["id", "extra"] } });
    const out = await drain(reader);
    expect(out.times).toEqual(all.times);
    const expected = all.rows.map((r) => [r[0], r[1], r[2] === null ? null : { ...(r[2] as object), extra: null }]);
    expect(out.rows).toEqual(expected);
    // Padding is there in full when read: bids average the reference's 100 bytes.
    const bids = all.rows.filter((r) => r[2] !== null).map((r) => (r[2] as { extra: string }).extra);
    expect(bids.every((e) => typeof e === "string" && e.length > 40)).toBe(true);
  });

  // Its speed is measured by bun run bench, not asserted here (a loaded machine is no test of it).
  test("unthrottled, 2M events end exactly at message_count", async () => {
    const { reader } = await createReader(nexmark, { options: unthrottled({ message_count: "2000000" }) });
    let n = 0;
    for (;;) {
      const p = await reader.poll(4096);
      if ("end" in p) break;
      for (const b of p.batches) n += b.rows.length;
    }
    expect(n).toBe(2_000_000);
  });
});
