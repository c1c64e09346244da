/**
 * The binary format of a state table's checkpoint file: one section per key
 * group, each a sequence of MessagePack values (deletions first, then puts),
 * and a footer indexing the sections, so a restoring subtask reads only the
 * key groups it owns. A file is either full (the table's whole content for its
 * key groups) or a delta (what changed since the previous checkpoint).
 *
 *   [section]...[footer: MessagePack][footer length: u32 LE]["RNST"]
 *   put    = [1, time | null, hash, key, value]
 *   delete = [0, time | null, hash, key]
 */
import { Packr, Unpackr } from "msgpackr";
import { Slicer } from "./slicer.ts";

// Plain objects stay objects (struct values); Maps in state are saved as entry lists by their codec.
export const packr = new Packr({ useRecords: false, moreTypes: true });
export const unpackr = new Unpackr({ useRecords: false, moreTypes: true });

const MAGIC = 0x54534e52; // "RNST" little-endian
export const STATE_FILE_VERSION = 1;

export interface StateFileFooter {
  v: number;
  table: string;
  checkpoint: number;
  full: boolean;
  /** Time tables: entries with time ≤ this were dropped (applies before this file's own entries). */
  droppedUpTo: number | null;
  /** [key group, offset, length, puts, deletes] per section, by key group. */
  groups: [number, number, number, number, number][];
}

export const PUT = 1;
export const DELETE = 0;
export type StateRecord = [typeof PUT, number | null, number, unknown[], unknown] | [typeof DELETE, number | null, number, unknown[]];

/** Packs values as a bare sequence (the encoding of an array without its header). */
export function packSequence(values: unknown[]): Uint8Array {
  if (values.length === 0) return new Uint8Array(0);
  const whole = packr.pack(values);
  const first = whole[0]!;
  const header = first >= 0x90 && first <= 0x9f ? 1 : first === 0xdc ? 3 : 5;
  return whole.slice(header);
}

export function unpackSequence(bytes: Uint8Array): unknown[] {
  if (bytes.byteLength === 0) return [];
  return unpackr.unpackMultiple(bytes) as unknown[];
}

/** Assembles a file from encoded sections (key group order), copying in slices (a full file of millions of keys is large). */
export async function encodeStateFile(
  meta: Omit<StateFileFooter, "v" | "groups">,
  sections: { kg: number; bytes: Uint8Array[]; puts: number; deletes: number }[],
): Promise<Uint8Array> {
  const slicer = new Slicer();
  const groups: StateFileFooter["groups"] = [];
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const s of sections) {
    let length = 0;
    for (const b of s.bytes) {
      parts.push(b);
      length += b.byteLength;
    }
    groups.push([s.kg, offset, length, s.puts, s.deletes]);
    offset += length;
  }
  const footer = packr.pack({ v: STATE_FILE_VERSION, ...meta, groups } satisfies StateFileFooter);
  const tail = new Uint8Array(8);
  const view = new DataView(tail.buffer);
  view.setUint32(0, footer.byteLength, true);
  view.setUint32(4, MAGIC, true);
  const out = new Uint8Array(offset + footer.byteLength + 8);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
    await slicer.maybeYield();
  }
  out.set(footer, at);
  out.set(tail, at + footer.byteLength);
  return out;
}

/** Reads the footer, given the file's last bytes (at least the footer and 8 more). */
export function decodeFooter(tail: Uint8Array, fileSize: number, where: string): { footer: StateFileFooter; start: number } {
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  if (tail.byteLength < 8 || view.getUint32(tail.byteLength - 4, true) !== MAGIC) throw new Error(`${where} is not a Runnel state file (or is cut short)`);
  const length = view.getUint32(tail.byteLength - 8, true);
  if (length + 8 > tail.byteLength) return { footer: null as never, start: fileSize - 8 - length };
  const footer = unpackr.unpack(tail.subarray(tail.byteLength - 8 - length, tail.byteLength - 8)) as StateFileFooter;
  if (footer.v !== STATE_FILE_VERSION) throw new Error(`${where} has state file version ${footer.v}; this Runnel reads version ${STATE_FILE_VERSION}`);
  return { footer, start: fileSize - 8 - length };
}
