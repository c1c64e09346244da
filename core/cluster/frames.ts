/**
 * The wire format between a job's processes: length-prefixed frames over TCP
 * or Unix sockets, each with a kind, a logical channel and a MessagePack body.
 *
 *   [u32 LE: length of what follows][u8 kind][u32 LE channel][body]
 *
 * Data frames carry a channel's messages (batches, watermarks, barriers) in the
 * order they were sent, a batch in the exchange's column encoding
 * (batch-codec.ts) rather than MessagePack; credit frames give a sender room for
 * more; control frames carry the job manager's conversation with its workers.
 */
import { Packr, Unpackr } from "msgpackr";
import type { Socket } from "bun";
import type { Message } from "../runtime/messages.ts";
import { decodeBatch, encodeBatch } from "./batch-codec.ts";

export const enum FrameKind {
  /** First frame of a connection: who is calling, with the job's secret. */
  Hello = 1,
  Data = 2,
  /** The receiver took `n` messages of a channel: the sender may send `n` more. */
  Credit = 3,
  Control = 4,
  /** A data frame whose body is one batch in the column encoding; readers hand it on as Data. */
  Batch = 5,
}

const HEADER = 9;
// Rows hold plain values, arrays and structs (objects); no records, so a batch decodes as it was sent.
const packr = new Packr({ useRecords: false, moreTypes: true });
const unpackr = new Unpackr({ useRecords: false, moreTypes: true });

export function encodeFrame(kind: FrameKind, channel: number, body: unknown): Uint8Array {
  const payload = packr.pack(body);
  const out = new Uint8Array(HEADER + payload.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.byteLength + 5, true);
  out[4] = kind;
  view.setUint32(5, channel, true);
  out.set(payload, HEADER);
  return out;
}

/** A channel's message as a frame: batches column-wise, the rest as MessagePack. */
export function encodeMessageFrame(channel: number, msg: Message): Uint8Array {
  if (msg.kind !== "batch") return encodeFrame(FrameKind.Data, channel, msg);
  const parts = encodeBatch(msg.batch);
  const out = new Uint8Array(HEADER + parts.bytes);
  new DataView(out.buffer).setUint32(0, parts.bytes + 5, true);
  out[4] = FrameKind.Batch;
  new DataView(out.buffer).setUint32(5, channel, true);
  let at = HEADER;
  for (const p of parts.list) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Collects a connection's bytes and hands out whole frames. */
export class FrameReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;

  constructor(
    private readonly onFrame: (kind: FrameKind, channel: number, body: unknown) => void,
    /** Frames larger than this are refused: nothing a peer sends may take unbounded memory. */
    private readonly maxFrameBytes = 256 * 1024 * 1024,
  ) {}

  push(chunk: Uint8Array): void {
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    while (this.buffered >= 4) {
      const head = this.peek(4);
      const length = new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true);
      if (length > this.maxFrameBytes) throw new Error(`a peer sent a frame of ${length} bytes, over the ${this.maxFrameBytes}-byte limit`);
      if (this.buffered < 4 + length) return;
      const frame = this.take(4 + length);
      const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
      const kind = frame[4] as FrameKind;
      const channel = view.getUint32(5, true);
      const body = frame.subarray(HEADER);
      if (kind === FrameKind.Batch) this.onFrame(FrameKind.Data, channel, { kind: "batch", batch: decodeBatch(body) } satisfies Message);
      else this.onFrame(kind, channel, unpackr.unpack(body));
    }
  }

  /** The first `n` buffered bytes, without consuming them. */
  private peek(n: number): Uint8Array {
    if (this.chunks[0]!.byteLength >= n) return this.chunks[0]!;
    return this.join(n, false);
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.byteLength === n) {
      this.chunks.shift();
      this.buffered -= n;
      return first;
    }
    if (first.byteLength > n) {
      this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return first.subarray(0, n);
    }
    return this.join(n, true);
  }

  private join(n: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    let i = 0;
    while (at < n) {
      const c = this.chunks[i]!;
      const part = Math.min(c.byteLength, n - at);
      out.set(c.subarray(0, part), at);
      at += part;
      if (consume) {
        if (part === c.byteLength) this.chunks.shift();
        else this.chunks[0] = c.subarray(part);
      } else i++;
    }
    if (consume) this.buffered -= n;
    return out;
  }
}

/**
 * Writes frames to a socket in order, keeping what the socket did not take until
 * it drains; `flushed()` resolves when nothing is left (the sender's own backpressure).
 */
export class FrameWriter {
  private queue: Uint8Array[] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  constructor(private readonly socket: Socket<unknown>) {}

  write(frame: Uint8Array): void {
    if (this.closed) throw new Error("the connection to a job process is closed");
    if (this.queue.length > 0) {
      this.queue.push(frame);
      return;
    }
    const n = this.socket.write(frame);
    if (n < frame.byteLength) this.queue.push(frame.subarray(Math.max(0, n)));
  }

  /** Called from the socket's drain handler. */
  drain(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = this.socket.write(head);
      if (n < head.byteLength) {
        this.queue[0] = head.subarray(Math.max(0, n));
        return;
      }
      this.queue.shift();
    }
    for (const w of this.waiters.splice(0)) w();
  }

  get pending(): number {
    let n = 0;
    for (const q of this.queue) n += q.byteLength;
    return n;
  }

  flushed(): Promise<void> {
    if (this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w();
  }
}
