/**
 * The changes of one checkpoint epoch that left a disk table's memory (entries
 * written back to the database, deletions), in the order they happened, spooled
 * to a scratch file in chunks by key group. The delta that closes the epoch reads
 * them back instead of searching the database for what changed, and a chunk
 * holds one key group's records in order, so a restore applying the file's
 * chunks in order applies each key's changes in order.
 */
import { closeSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { GroupedRecords, type StateChunk } from "./file-format.ts";

/** Records kept in memory before they go to the file, a chunk per key group. */
const PENDING_BYTES = 4 * 1024 * 1024;

export class ChangeLog {
  private readonly pending = new GroupedRecords();
  private fd: number | null = null;
  private size = 0;
  /** Records added since the epoch opened. */
  records = 0;
  /** [key group, offset, length, puts, deletes] of the chunks in the file, in the order written. */
  private readonly chunks: [number, number, number, number, number][] = [];

  constructor(private readonly file: string) {}

  /** Adds one encoded record (a put or a deletion) of key group `kg`. */
  add(kg: number, record: Uint8Array, put: boolean): void {
    this.pending.add(kg, record, put ? 1 : 0, put ? 0 : 1);
    this.records++;
    if (this.pending.bytes >= PENDING_BYTES) this.flush();
  }

  private flush(): void {
    for (const c of this.pending.take()) {
      if (this.fd === null) this.fd = openSync(this.file, "w+");
      for (let at = 0; at < c.bytes.byteLength; ) at += writeSync(this.fd, c.bytes, at, c.bytes.byteLength - at, this.size + at);
      this.chunks.push([c.kg, this.size, c.bytes.byteLength, c.puts, c.deletes]);
      this.size += c.bytes.byteLength;
    }
  }

  /** The epoch closed: what is still in memory goes to the file, and the chunks are read back in order. */
  async *drain(): AsyncGenerator<StateChunk> {
    this.flush();
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
    this.records = 0;
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
      rmSync(this.file, { force: true });
    }
  }
}
