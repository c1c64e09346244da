/**
 * The changes of one checkpoint epoch that left a disk table's memory (entries
 * written back to the database, deletions), in the order they happened, spooled
 * to a scratch file in chunks by key group. The delta that closes the epoch reads
 * them back instead of searching the database for what changed, and a chunk
 * holds one key group's records in order, so a restore applying the file's
 * chunks in order applies each key's changes in order.
 */
import { closeSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import type { StateChunk } from "./file-format.ts";

/** Records of a key group kept in memory before they go to the file as one chunk. */
const CHUNK_BYTES = 128 * 1024;

interface Pending {
  parts: Uint8Array[];
  bytes: number;
  puts: number;
  deletes: number;
}

export class ChangeLog {
  private readonly pending = new Map<number, Pending>();
  private fd: number | null = null;
  private size = 0;
  /** [key group, offset, length, puts, deletes] of the chunks in the file, in the order written. */
  private readonly chunks: [number, number, number, number, number][] = [];

  constructor(private readonly file: string) {}

  /** Adds one encoded record (a put or a deletion) of key group `kg`. */
  add(kg: number, record: Uint8Array, put: boolean): void {
    let p = this.pending.get(kg);
    if (!p) this.pending.set(kg, (p = { parts: [], bytes: 0, puts: 0, deletes: 0 }));
    p.parts.push(record);
    p.bytes += record.byteLength;
    if (put) p.puts++;
    else p.deletes++;
    if (p.bytes >= CHUNK_BYTES) this.flush(kg, p);
  }

  private flush(kg: number, p: Pending): void {
    this.pending.delete(kg);
    const data = p.parts.length === 1 ? p.parts[0]! : Buffer.concat(p.parts, p.bytes);
    if (this.fd === null) this.fd = openSync(this.file, "w+");
    for (let at = 0; at < data.byteLength; ) at += writeSync(this.fd, data, at, data.byteLength - at, this.size + at);
    this.chunks.push([kg, this.size, data.byteLength, p.puts, p.deletes]);
    this.size += data.byteLength;
  }

  /** The epoch closed: what is still in memory goes to the file, and the chunks are read back in order. */
  async *drain(): AsyncGenerator<StateChunk> {
    for (const [kg, p] of [...this.pending]) this.flush(kg, p);
    try {
      for (const [kg, offset, length, puts, deletes] of this.chunks) {
        const bytes = new Uint8Array(length);
        for (let at = 0; at < length; ) at += readSync(this.fd!, bytes, at, length - at, offset + at);
        yield { kg, bytes, puts, deletes };
      }
    } finally {
      this.discard();
    }
  }

  /** Not needed (a full snapshot reads the database instead): frees the file. */
  discard(): void {
    this.pending.clear();
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
      rmSync(this.file, { force: true });
    }
  }
}
