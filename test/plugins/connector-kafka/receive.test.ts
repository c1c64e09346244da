/**
 * Framing of responses into reused receive buffers (receive.ts): every
 * response comes out whole and unchanged however the socket cuts it, Fetch
 * responses on a connection with a pool land in its buffers and others do
 * not, and a buffer given back is reused only once per lease.
 */
import { expect, test } from "bun:test";
import { fieldsHoldBytes, processData, RECEIVE_POOL, ReceivePool } from "../../../plugins/connector-kafka/receive.ts";
import { json } from "../../../plugins/format-json/index.ts";
import type { Field } from "../../../core/plugin-api/index.ts";

const FETCH = 1;
const PRODUCE = 0;

/** A connection as processData sees it: kafkajs's framing state and request queue. */
function fakeConnection(pool: ReceivePool | undefined, apiKeys: Map<number, number>) {
  const fulfilled: { correlationId: number; size: number; payload: Buffer; leased: boolean }[] = [];
  const seen = new Set<ArrayBufferLike>();
  if (pool) {
    const take = pool.take.bind(pool);
    pool.take = (size: number) => {
      const b = take(size);
      seen.add(b.buffer);
      return b;
    };
  }
  const conn: any = {
    authHandlers: null,
    chunks: [],
    bytesBuffered: 0,
    bytesNeeded: 4,
    requestQueue: {
      inflight: { get: (id: number) => (apiKeys.has(id) ? { entry: { apiKey: apiKeys.get(id) } } : undefined) },
      fulfillRequest(r: { correlationId: number; size: number; payload: Buffer }) {
        const leased = seen.has(r.payload.buffer);
        // Copied now: a leased payload is only valid until it is given back, which it is at once.
        fulfilled.push({ ...r, payload: Buffer.from(r.payload), leased });
        if (leased) pool!.release(r.payload);
      },
    },
    [RECEIVE_POOL]: pool,
  };
  return { conn, fulfilled };
}

function response(correlationId: number, body: Buffer): Buffer {
  const out = Buffer.alloc(8 + body.length);
  out.writeInt32BE(4 + body.length, 0);
  out.writeInt32BE(correlationId, 4);
  body.copy(out, 8);
  return out;
}

function randomBody(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed * 2654435761;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

test("responses come out whole however the socket cuts them; large Fetch responses land in the pool's buffers, others not", () => {
  const sizes = [0, 3, 100, 70_000, 5, 300_000, 1, 2_100_000, 64, 40_000];
  const apiKeys = new Map(sizes.map((_, i) => [1000 + i, i % 3 === 2 ? PRODUCE : FETCH]));
  const bodies = sizes.map((n, i) => randomBody(n, i + 1));
  const stream = Buffer.concat(bodies.map((b, i) => response(1000 + i, b)));
  // Cut points: every byte at the start (headers cut anywhere), then socket-sized and odd chunks.
  for (const cut of [1, 3, 7, 65_536, 100_003, stream.length]) {
    const { conn, fulfilled } = fakeConnection(new ReceivePool(8 << 20), apiKeys);
    for (let o = 0; o < stream.length; o += cut) processData.call(conn, stream.subarray(o, Math.min(stream.length, o + cut)));
    expect(fulfilled.map((f) => f.correlationId)).toEqual(sizes.map((_, i) => 1000 + i));
    for (let i = 0; i < sizes.length; i++) {
      const f = fulfilled[i]!;
      expect(f.size).toBe(4 + sizes[i]!);
      expect(Buffer.compare(f.payload, bodies[i]!)).toBe(0);
      // Leased: Fetch responses only, and every one whose body is not all in the chunk its header ends in.
      if (f.leased) expect(apiKeys.get(f.correlationId)).toBe(FETCH);
      if (apiKeys.get(f.correlationId) === FETCH && sizes[i]! >= cut) expect(f.leased).toBe(true);
    }
    if (cut === stream.length) expect(fulfilled.some((f) => f.leased)).toBe(false);
    expect(conn.chunks.reduce((n: number, c: Buffer) => n + c.length, 0)).toBe(0);
  }
});

test("a Fetch response announcing more than the pool's limit is framed as kafkajs frames it, not allocated ahead", () => {
  const bodies = [randomBody(200_000, 11), randomBody(30_000, 12)];
  const stream = Buffer.concat(bodies.map((b, i) => response(7 + i, b)));
  const { conn, fulfilled } = fakeConnection(new ReceivePool(100_000), new Map([[7, FETCH], [8, FETCH]]));
  for (let o = 0; o < stream.length; o += 16_384) processData.call(conn, stream.subarray(o, o + 16_384));
  expect(fulfilled.map((f) => [Buffer.compare(f.payload, bodies[f.correlationId - 7]!), f.leased])).toEqual([[0, false], [0, true]]);
});

test("without a pool, Fetch responses are framed as kafkajs frames them", () => {
  const bodies = [randomBody(200_000, 9), randomBody(10, 10)];
  const stream = Buffer.concat(bodies.map((b, i) => response(7 + i, b)));
  const { conn, fulfilled } = fakeConnection(undefined, new Map([[7, FETCH], [8, FETCH]]));
  for (let o = 0; o < stream.length; o += 65_536) processData.call(conn, stream.subarray(o, o + 65_536));
  expect(fulfilled.map((f) => Buffer.compare(f.payload, bodies[f.correlationId - 7]!))).toEqual([0, 0]);
});

test("a buffer given back is reused; a second release of the same lease does not free it again", () => {
  const pool = new ReceivePool(8 << 20);
  const a = pool.take(100_000);
  pool.release(a);
  const b = pool.take(90_000);
  expect(b.buffer).toBe(a.buffer);
  expect(b.length).toBe(90_000);
  pool.release(a); // stale: a's lease ended; b holds the buffer now
  const c = pool.take(90_000);
  expect(c.buffer).not.toBe(b.buffer);
  pool.release(Buffer.alloc(10)); // never leased: ignored
  expect(pool.take(10).buffer).not.toBe(b.buffer);
});

test("the source leases receive buffers only when no column can hold bytes", () => {
  const f = (type: Field["type"]): Field => ({ name: "c", type, nullable: true });
  expect(fieldsHoldBytes([f({ kind: "int", bits: 64 }), f({ kind: "string" }), f({ kind: "timestamp" }), f({ kind: "json" })])).toBe(false);
  expect(fieldsHoldBytes([f({ kind: "string" }), f({ kind: "bytes" })])).toBe(true);
  expect(fieldsHoldBytes([f({ kind: "array", element: { kind: "bytes" } })])).toBe(true);
  expect(fieldsHoldBytes([f({ kind: "struct", fields: [f({ kind: "map", key: { kind: "string" }, value: { kind: "bytes" } })] })])).toBe(true);
});

test("JSON rows keep no view of the bytes they were read from (the buffer can be overwritten after)", () => {
  const fields: Field[] = [
    { name: "id", type: { kind: "int", bits: 64 }, nullable: true },
    { name: "user", type: { kind: "string" }, nullable: true },
    { name: "t", type: { kind: "timestamp" }, nullable: true },
    { name: "doc", type: { kind: "json" }, nullable: true },
  ];
  const d = json.deserializer!({ options: {}, fields } as any);
  const texts = ['{"id":1,"user":"user-1","t":"2024-01-01T00:00:00Z","doc":null}', '{"id":2,"user":"ü-2","t":"2024-01-01T00:00:01.5Z","doc":{"a":[1,"x"]}}', '{"user":"a\\"b","id":3}'];
  const buf = Buffer.from(texts.join(""));
  const rows = [];
  let o = 0;
  for (const t of texts) {
    const n = Buffer.byteLength(t);
    rows.push(d.deserializeRange!(buf, o, o + n));
    o += n;
  }
  const before = JSON.stringify(rows);
  buf.fill(0x41);
  expect(JSON.stringify(rows)).toBe(before);
  expect(rows.flat().some((v) => v instanceof Uint8Array)).toBe(false);
});
