/**
 * Turning received messages into rows, shared by the message sources: the
 * format's async `prepare` awaited when it returns a promise, bad records
 * reported where they were, METADATA FROM columns appended, bytes counted.
 */
import type { Row, SourceContext, SourceReader } from "../../core/plugin-api/index.ts";

export interface MessageView<M> {
  data(m: M): Uint8Array | string;
  /** Event time, µs. */
  time(m: M): number;
  /** Where the message was, for bad-record reports. */
  where(m: M): string;
  /** A METADATA FROM value. */
  metadata?(m: M, key: string): unknown;
}

export interface Decoded {
  rows: Row[];
  times: number[];
  bytes: number;
}

export async function decodeMessages<M>(ctx: SourceContext<unknown>, messages: M[], view: MessageView<M>): Promise<Decoded> {
  const format = ctx.format!;
  const keys = ctx.metadata ?? [];
  const rows: Row[] = [];
  const times: number[] = [];
  let bytes = 0;
  for (const m of messages) {
    const data = view.data(m);
    bytes += typeof data === "string" ? data.length : data.byteLength;
    if (format.prepare) {
      const ready = format.prepare(data);
      if (ready) await ready;
    }
    let row: Row | null;
    try {
      row = format.deserialize(data);
    } catch (err) {
      ctx.badRecord(view.where(m), err);
      continue;
    }
    if (row === null) continue;
    for (const key of keys) row.push(view.metadata ? view.metadata(m, key) ?? null : null);
    rows.push(row);
    times.push(view.time(m));
  }
  return { rows, times, bytes };
}

/** A reader with no splits, for subtasks of a source that is one connection (idle from the start). */
export function idleReader(): SourceReader {
  return { splits: () => [], poll: async () => (await Bun.sleep(100), { batches: [] }), snapshot: () => ({}) };
}
