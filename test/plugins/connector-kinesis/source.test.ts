/**
 * The Kinesis source against a real emulator (kinesalite): shards spread over
 * subtasks, arrival time as event time, kill -9 and restore from the
 * checkpoint with every record once, resharding (split, then merge) while the
 * job runs with per-key order kept, `latest` across a restart, bad records
 * named by shard and sequence number, and a missing stream named.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { MergeShardsCommand, SplitShardCommand } from "@aws-sdk/client-kinesis";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { createStream, deleteStreams, KINESIS_OPTS, kinesisClient, listShards, putRecords, startJob, waitUntil } from "../../kit/kinesis.ts";

setDefaultTimeout(60_000);
afterAll(deleteStreams);

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : []);
const rowsOf = (file: string) => lines(file).map((l) => JSON.parse(l));

/** Hash keys inside the first and second half of the key space: one per shard of a 2-shard stream. */
const LOW = "1";
const HIGH = (2n ** 127n + 1n).toString();

/** A Kinesis table read into a single_file sink (exactly-once output). */
function readerPipeline(dir: string, stream: string, opts: { columns?: string; select?: string; extra?: string; parallelism?: number } = {}) {
  const out = join(dir, "out.jsonl");
  const sql = writeSql(
    dir,
    `CREATE TABLE src (${opts.columns ?? "id BIGINT, k TEXT"}) WITH (connector = 'kinesis', ${KINESIS_OPTS}, stream_name = '${stream}', type = 'source', format = 'json'${opts.extra ?? ", 'source.offset' = 'earliest'"});
CREATE TABLE out WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out ${opts.select ?? "SELECT id, k FROM src"};`,
  );
  const start = () =>
    startJob([sql, "--checkpoint-interval", "200ms", "--parallelism", String(opts.parallelism ?? 2), "--quiet", "--state-dir", join(dir, "state")]);
  return { start, out, sql };
}

describe("kinesis source", () => {
  test("two shards on two subtasks: every record a producer put is read once, with its shard", async () => {
    const stream = await createStream("src-shards", 2);
    const records = Array.from({ length: 300 }, (_, i) => ({ data: JSON.stringify({ id: i, k: `key${i % 7}` }), hashKey: i % 2 ? HIGH : LOW }));
    await putRecords(stream, records);
    const dir = tempDir("runnel-kinesis-shards-");
    const p = readerPipeline(dir, stream, {
      columns: "id BIGINT, k TEXT, shard TEXT METADATA FROM 'shard_id', seq TEXT METADATA FROM 'sequence_number'",
      select: "SELECT id, shard, seq FROM src",
    });
    const job = p.start();
    await waitUntil("300 records", () => lines(p.out).length >= 300);
    await Bun.sleep(500);
    expect(await job.stop()).toBe(0);
    const rows = rowsOf(p.out);
    expect(rows.map((r) => r.id).sort((a, b) => a - b)).toEqual(records.map((_, i) => i));
    const shards = (await listShards(stream)).map((s) => s.ShardId!);
    for (const r of rows) expect(r.shard).toBe(shards[r.id % 2]);
    // Within a shard, records come in sequence order.
    for (const shard of shards) {
      const seqs = rows.filter((r) => r.shard === shard).map((r) => BigInt(r.seq));
      expect(seqs).toEqual([...seqs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    }
  });

  test("ApproximateArrivalTimestamp is the event time: a one-second window holds what arrived in that second", async () => {
    const stream = await createStream("src-time", 2);
    const dir = tempDir("runnel-kinesis-time-");
    const p = readerPipeline(dir, stream, {
      columns: "id BIGINT, k TEXT, at TIMESTAMP METADATA FROM 'arrival_time'",
      select: "SELECT tumble(INTERVAL '1' SECOND) AS w, count(*) AS n, min(at) AS first, max(at) AS last FROM src GROUP BY w",
      parallelism: 1,
    });
    const job = p.start();
    await Bun.sleep(1000);
    // A burst within one second, then (2 s later) one record per shard to move both shards' watermarks past it.
    const sec = Math.floor(Date.now() / 1000) * 1000;
    if (Date.now() - sec > 700) await Bun.sleep(sec + 1000 - Date.now() + 20);
    await putRecords(stream, Array.from({ length: 40 }, (_, i) => ({ data: JSON.stringify({ id: i, k: "a" }), hashKey: i % 2 ? HIGH : LOW })));
    await Bun.sleep(2500);
    await putRecords(stream, [{ data: '{"id": 100, "k": "b"}', hashKey: LOW }, { data: '{"id": 101, "k": "b"}', hashKey: HIGH }]);
    await waitUntil("the burst's window", () => lines(p.out).length >= 1);
    expect(await job.stop()).toBe(0);
    const [w] = rowsOf(p.out);
    expect(w.n).toBe(40);
    const start = Date.parse(w.w.start ?? w.w);
    expect(Date.parse(w.first)).toBeGreaterThanOrEqual(start);
    expect(Date.parse(w.last)).toBeLessThan(start + 1000);
  });

  test("kill -9 while records arrive, then restart: each record is in the output once", async () => {
    const stream = await createStream("src-crash", 2);
    const dir = tempDir("runnel-kinesis-crash-");
    const p = readerPipeline(dir, stream);
    let next = 0;
    let producing = true;
    const producer = (async () => {
      // Producing until the last kill, however long the runs take to start, so every round sees new records.
      while (producing && next < 50_000) {
        const batch = Array.from({ length: 50 }, (_, i) => ({ data: JSON.stringify({ id: next + i, k: `key${(next + i) % 11}` }), key: `key${(next + i) % 11}` }));
        next += 50;
        await putRecords(stream, batch);
        await Bun.sleep(30);
      }
    })();
    for (let round = 0; round < 3; round++) {
      const job = p.start();
      const before = lines(p.out).length;
      await waitUntil(`output to grow in round ${round}`, () => lines(p.out).length > before + 200);
      await Bun.sleep(150 + round * 120);
      await job.kill();
    }
    producing = false;
    await producer;
    const total = next;
    const job = p.start();
    await waitUntil(`all ${total} records`, () => lines(p.out).length >= total);
    await Bun.sleep(800);
    expect(await job.stop()).toBe(0);
    const ids = rowsOf(p.out).map((r) => r.id);
    expect(ids.length).toBe(total);
    expect(new Set(ids).size).toBe(total);
    // Per partition key (one shard each), the order the producer put them in.
    const byKey = new Map<string, number[]>();
    for (const r of rowsOf(p.out)) byKey.set(r.k, [...(byKey.get(r.k) ?? []), r.id]);
    for (const list of byKey.values()) expect(list).toEqual([...list].sort((a, b) => a - b));
  });

  test("resharding: a split and a merge are followed; children are read after their parents, per-key order kept", async () => {
    const stream = await createStream("src-reshard", 1);
    const dir = tempDir("runnel-kinesis-reshard-");
    const p = readerPipeline(dir, stream, { columns: "id BIGINT, k TEXT, shard TEXT METADATA FROM 'shard_id'", select: "SELECT id, k, shard FROM src" });
    const keys = Array.from({ length: 16 }, (_, i) => `user${i}`);
    let next = 0;
    const put = async (n: number) => {
      const batch = Array.from({ length: n }, (_, i) => ({ data: JSON.stringify({ id: next + i, k: keys[(next + i) % keys.length] }), key: keys[(next + i) % keys.length] }));
      next += n;
      await putRecords(stream, batch);
    };
    const openShards = async () => (await listShards(stream)).filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber);
    const client = kinesisClient();
    await put(200);
    let job = p.start();
    await waitUntil("the first records", () => lines(p.out).length >= 200);
    expect(await job.stop()).toBe(0);
    // Split while the job is stopped, with records on the parent and on both children unread:
    // the restored job must finish the parent before it starts the children.
    const [root] = await listShards(stream);
    await put(200);
    await client.send(new SplitShardCommand({ StreamName: stream, ShardToSplit: root!.ShardId!, NewStartingHashKey: (2n ** 127n).toString() }));
    await waitUntil("two open shards", async () => (await openShards()).length === 2, 10_000);
    await put(300);
    job = p.start();
    await waitUntil("records after the split", () => lines(p.out).length >= next, 20_000);
    // A merge while the job runs: picked up by the periodic shard listing.
    const children = (await listShards(stream)).filter((s) => s.ParentShardId === root!.ShardId);
    expect(children.length).toBe(2);
    await client.send(new MergeShardsCommand({ StreamName: stream, ShardToMerge: children[0]!.ShardId!, AdjacentShardToMerge: children[1]!.ShardId! }));
    await waitUntil("one open shard", async () => (await openShards()).length === 1, 10_000);
    await put(300);
    await waitUntil("records after the merge", () => lines(p.out).length >= next, 20_000);
    await Bun.sleep(500);
    expect(await job.stop()).toBe(0);
    const rows = rowsOf(p.out);
    expect(rows.map((r) => r.id).sort((a, b) => a - b)).toEqual(Array.from({ length: next }, (_, i) => i));
    const merged = (await listShards(stream)).find((s) => s.AdjacentParentShardId)!;
    const lineage = [root!.ShardId!, children[0]!.ShardId!, children[1]!.ShardId!, merged.ShardId!];
    expect(new Set(rows.map((r) => r.shard))).toEqual(new Set(lineage));
    // In output order, every parent's records come before any of its children's.
    const lastOf = (shard: string) => rows.findLastIndex((r) => r.shard === shard);
    const firstOf = (shard: string) => rows.findIndex((r) => r.shard === shard);
    expect(lastOf(root!.ShardId!)).toBeLessThan(Math.min(firstOf(children[0]!.ShardId!), firstOf(children[1]!.ShardId!)));
    expect(Math.max(lastOf(children[0]!.ShardId!), lastOf(children[1]!.ShardId!))).toBeLessThan(firstOf(merged.ShardId!));
    for (const key of keys) {
      const ids = rows.filter((r) => r.k === key).map((r) => r.id);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
    }
  });

  test("event-time windows keep closing after a restore and after a split (finished shards and other subtasks' shards hold no watermark)", async () => {
    const stream = await createStream("src-windows", 2);
    const dir = tempDir("runnel-kinesis-windows-");
    const p = readerPipeline(dir, stream, { select: "SELECT tumble(INTERVAL '1' SECOND) AS w, count(*) AS n FROM src GROUP BY w", extra: "" });
    let producing = true;
    let next = 0;
    const producer = (async () => {
      while (producing) {
        await putRecords(stream, Array.from({ length: 10 }, (_, i) => ({ data: JSON.stringify({ id: next + i, k: "x" }), key: `k${next + i}` })));
        next += 10;
        await Bun.sleep(200);
      }
    })();
    const windowsGrowBy = (n: number, what: string) => {
      const before = lines(p.out).length;
      return waitUntil(what, () => lines(p.out).length >= before + n, 10_000);
    };
    let job = p.start();
    await windowsGrowBy(2, "windows in the first run");
    expect(await job.stop()).toBe(0);
    job = p.start();
    await windowsGrowBy(3, "windows after the restore");
    const [first] = await listShards(stream);
    await kinesisClient().send(new SplitShardCommand({ StreamName: stream, ShardToSplit: first!.ShardId!, NewStartingHashKey: (2n ** 126n).toString() }));
    await Bun.sleep(1000);
    await windowsGrowBy(3, "windows after the split");
    producing = false;
    await producer;
    expect(await job.stop()).toBe(0);
    const starts = rowsOf(p.out).map((r) => Date.parse(r.w.start ?? r.w));
    expect(new Set(starts).size).toBe(starts.length);
  });

  test("source.offset = 'latest' skips what was there; after a stop, what arrived meanwhile is read (even on a shard not read yet)", async () => {
    const stream = await createStream("src-latest", 2);
    await putRecords(stream, [{ data: '{"id": 1, "k": "old"}', hashKey: LOW }, { data: '{"id": 2, "k": "old"}', hashKey: HIGH }]);
    const dir = tempDir("runnel-kinesis-latest-");
    const p = readerPipeline(dir, stream, { extra: "" });
    const first = p.start();
    // 'latest' is where the shard is when the job first reads it, which a loaded machine delays:
    // new records go in until one comes out; those put before the job started reading are skipped.
    const put: number[] = [];
    for (let id = 100; lines(p.out).length === 0; id++) {
      await putRecords(stream, [{ data: JSON.stringify({ id, k: "new" }), hashKey: LOW }]);
      put.push(id);
      await Bun.sleep(300);
    }
    await Bun.sleep(400);
    expect(await first.stop()).toBe(0);
    // While stopped: one record on each shard; the second shard had nothing read when it stopped.
    await putRecords(stream, [{ data: '{"id": 4, "k": "gap"}', hashKey: LOW }, { data: '{"id": 5, "k": "gap"}', hashKey: HIGH }]);
    const second = p.start();
    await waitUntil("the records put while stopped", () => rowsOf(p.out).filter((r) => r.id < 100).length >= 2);
    await Bun.sleep(500);
    expect(await second.stop()).toBe(0);
    // Never the old records; of the new ones, every one from the first read on (in order); then both put while stopped.
    const ids = rowsOf(p.out).map((r) => r.id);
    const firstRead = put.indexOf(ids[0]!);
    expect(firstRead).toBeGreaterThanOrEqual(0);
    expect(ids.filter((id) => id >= 100)).toEqual(put.slice(firstRead));
    expect(ids.filter((id) => id < 100).sort()).toEqual([4, 5]);
  });

  test("bad records: 'drop' skips them, 'fail' stops the job naming shard and sequence number", async () => {
    const stream = await createStream("src-bad", 1);
    await putRecords(stream, [{ data: '{"id": 1, "k": "a"}' }, { data: "{not json" }, { data: '{"id": 3, "k": "a"}' }]);
    const [shard] = await listShards(stream);
    const dir = tempDir("runnel-kinesis-bad-");
    const p = readerPipeline(dir, stream, { extra: ", 'source.offset' = 'earliest', bad_data = 'drop'", parallelism: 1 });
    const job = p.start();
    await waitUntil("two good records", () => lines(p.out).length >= 2);
    expect(await job.stop()).toBe(0);
    expect(rowsOf(p.out).map((r) => r.id)).toEqual([1, 3]);
    expect(job.stderr()).toMatch(new RegExp(`dropped bad record in src at stream '${stream}' shard ${shard!.ShardId} sequence number \\d+`));

    const dir2 = tempDir("runnel-kinesis-bad-");
    const failing = readerPipeline(dir2, stream, { extra: ", 'source.offset' = 'earliest', bad_data = 'fail'", parallelism: 1 });
    const failed = await runCli(["run", failing.sql, "--quiet"], { timeoutMs: 30_000 });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(new RegExp(`bad record in source 'src' at stream '${stream}' shard ${shard!.ShardId} sequence number \\d+`));
    expect(failed.stderr).toContain("bad_data = 'drop'");
  });

  test("a stream that does not exist stops the job before it starts, naming 'stream_name'", async () => {
    const dir = tempDir("runnel-kinesis-missing-");
    const p = readerPipeline(dir, "no-such-stream-here");
    const r = await runCli(["run", p.sql, "--quiet"], { timeoutMs: 30_000 });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("kinesis stream 'no-such-stream-here' (option 'stream_name') does not exist in region 'us-east-1'");
  });
});
