/**
 * Fetch responses received into reused buffers. kafkajs gathers a response's
 * socket chunks with `Buffer.concat` into a fresh buffer: for the source's
 * 2 MB fetches that is a new large allocation per fetch, whose pages the
 * process faults in every time (about a tenth of the Kafka → Kafka pipeline's
 * CPU). A connection given a `ReceivePool` (the source's fetch connections)
 * copies a Fetch response's chunks into a buffer taken from the pool instead,
 * and the source gives the buffer back once it has turned the response's
 * records into rows.
 *
 * Giving back is safe only when nothing made from the response still points
 * into its bytes. The source leases buffers only when no column of its table
 * can hold bytes (`fieldsHoldBytes`): the value contract (types.ts) makes
 * every other value a number, boolean, string, array or object, and strings
 * are copies of the bytes they were read from. Each lease is its own payload
 * view, given back once (`release`), so a stale release can never free a
 * buffer leased again since.
 */
import type { Field, SqlType } from "../../core/plugin-api/index.ts";

const FETCH_API_KEY = 1;
/** Free buffers kept per pool: one fetch per leader in flight while the previous one is read. */
const KEEP_FREE = 4;

export class ReceivePool {
  private readonly free: ArrayBuffer[] = [];

  /**
   * `maxBytes`: the largest response taken into a pooled buffer. The buffer is
   * allocated from the size a response announces before its bytes arrive, so a
   * larger announcement (a broker gone wrong, or not a broker) goes kafkajs's
   * way, which holds only the bytes that do arrive.
   */
  constructor(readonly maxBytes: number) {}
  /** The payload views handed out and not yet given back. */
  private readonly leased = new WeakSet<Buffer>();

  /** A payload buffer of exactly `size` bytes, over a reused buffer where one is large enough. */
  take(size: number): Buffer {
    let ab: ArrayBuffer | undefined;
    for (let i = 0; i < this.free.length; i++) {
      if (this.free[i]!.byteLength >= size) {
        ab = this.free[i]!;
        this.free.splice(i, 1);
        break;
      }
    }
    // Rounded up, so a slightly larger response later fits the same buffer.
    ab ??= new ArrayBuffer(Math.max(size, 1 << 16) + (1 << 16));
    const view = Buffer.from(ab, 0, size);
    this.leased.add(view);
    return view;
  }

  /** Gives back a payload `take` returned (anything else, or a second release, is ignored). */
  release(payload: Uint8Array): void {
    if (!Buffer.isBuffer(payload) || !this.leased.delete(payload)) return;
    if (this.free.length < KEEP_FREE) this.free.push(payload.buffer as ArrayBuffer);
  }
}

export const RECEIVE_POOL = Symbol("runnel:receive-pool");
const RECEIVING = Symbol("runnel:receiving");

interface Receiving {
  payload: Buffer;
  at: number;
  size: number;
  correlationId: number;
}

/**
 * kafkajs's Connection.processData (2.2.4: frames responses out of socket
 * chunks, hands each to the request queue), with a Fetch response on a
 * connection that has a pool copied chunk by chunk into a leased buffer once
 * its size and correlation id are known. Every other response goes the way
 * kafkajs's does.
 */
export function processData(this: any, rawData: Buffer): unknown {
  if (this.authHandlers && !this.authExpectResponse) return this.authHandlers.onSuccess(rawData);
  let data = rawData;
  for (;;) {
    const rx: Receiving | undefined = this[RECEIVING];
    if (rx) {
      const n = Math.min(data.length, rx.payload.length - rx.at);
      data.copy(rx.payload, rx.at, 0, n);
      rx.at += n;
      if (rx.at < rx.payload.length) return;
      this[RECEIVING] = undefined;
      this.requestQueue.fulfillRequest({ size: rx.size, correlationId: rx.correlationId, payload: rx.payload });
      if (n === data.length) return;
      data = data.subarray(n);
    }
    this.chunks.push(data);
    this.bytesBuffered += data.length;
    while (this.bytesNeeded <= this.bytesBuffered) {
      const buffer: Buffer = this.chunks.length > 1 ? Buffer.concat(this.chunks) : this.chunks[0];
      const size = buffer.readInt32BE(0);
      if (buffer.length < 4 + size) {
        const pool: ReceivePool | undefined = this[RECEIVE_POOL];
        if (pool && !this.authHandlers && size >= 4 && size - 4 <= pool.maxBytes) {
          if (buffer.length < 8) {
            // Wait for the correlation id.
            this.chunks = [buffer];
            this.bytesBuffered = buffer.length;
            this.bytesNeeded = 8;
            return;
          }
          const correlationId = buffer.readInt32BE(4);
          if (this.requestQueue.inflight.get(correlationId)?.entry?.apiKey === FETCH_API_KEY) {
            const payload = pool.take(size - 4);
            buffer.copy(payload, 0, 8);
            this[RECEIVING] = { payload, at: buffer.length - 8, size, correlationId } satisfies Receiving;
            this.chunks = [];
            this.bytesBuffered = 0;
            this.bytesNeeded = 4;
            return;
          }
        }
        this.chunks = [buffer];
        this.bytesBuffered = buffer.length;
        this.bytesNeeded = 4 + size;
        return;
      }
      const remainder = buffer.subarray(4 + size);
      this.chunks = [remainder];
      this.bytesBuffered = remainder.length;
      this.bytesNeeded = 4;
      if (this.authHandlers) return this.authHandlers.onSuccess(buffer.subarray(0, 4 + size));
      this.requestQueue.fulfillRequest({ size, correlationId: buffer.readInt32BE(4), payload: buffer.subarray(8, 4 + size) });
    }
    return;
  }
}

/** Forgets a partly received response (the connection's socket is new). */
export function resetFraming(connection: any): void {
  connection[RECEIVING] = undefined;
  connection.chunks = [];
  connection.bytesBuffered = 0;
  connection.bytesNeeded = 4;
}

/** Whether a value of this type can be (or contain) a Uint8Array, which a format may make as a view of the bytes it read. */
function typeHoldsBytes(t: SqlType): boolean {
  switch (t.kind) {
    case "bytes":
      return true;
    case "array":
      return typeHoldsBytes(t.element);
    case "struct":
      return fieldsHoldBytes(t.fields);
    case "map":
      return typeHoldsBytes(t.key) || typeHoldsBytes(t.value);
    default:
      return false;
  }
}

export function fieldsHoldBytes(fields: Field[]): boolean {
  return fields.some((f) => typeHoldsBytes(f.type));
}
