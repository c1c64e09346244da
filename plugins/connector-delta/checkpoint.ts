/**
 * Delta log checkpoints: the table's state at a version (protocol, metadata,
 * application transactions and live files) as one Parquet file of actions,
 * `_delta_log/<version>.checkpoint.parquet`, so readers replay from there
 * rather than from version 0. Written and read with parquetjs, whose nested
 * groups give the struct, map and list columns the Delta spec lays out.
 */
import { Writable } from "node:stream";
import { parquetLib } from "../format-parquet/parquetjs.ts";
import type { AddAction, DeltaState, MetadataAction } from "./log.ts";

const str = { type: "UTF8", optional: true };
const reqStr = { type: "UTF8" };
const long = { type: "INT64", optional: true };
const strMap = {
  type: "MAP",
  optional: true,
  fields: { key_value: { repeated: true, fields: { key: reqStr, value: str } } },
};

const SCHEMA = () =>
  new (parquetLib().ParquetSchema)({
    txn: { optional: true, fields: { appId: str, version: long, lastUpdated: long } },
    add: {
      optional: true,
      fields: {
        path: str,
        partitionValues: strMap,
        size: long,
        modificationTime: long,
        dataChange: { type: "BOOLEAN", optional: true },
        stats: str,
      },
    },
    remove: { optional: true, fields: { path: str, deletionTimestamp: long, dataChange: { type: "BOOLEAN", optional: true } } },
    metaData: {
      optional: true,
      fields: {
        id: str,
        name: str,
        description: str,
        format: { optional: true, fields: { provider: str, options: strMap } },
        schemaString: str,
        partitionColumns: { type: "LIST", optional: true, fields: { list: { repeated: true, fields: { element: str } } } },
        configuration: strMap,
        createdTime: long,
      },
    },
    protocol: { optional: true, fields: { minReaderVersion: { type: "INT32", optional: true }, minWriterVersion: { type: "INT32", optional: true } } },
  });

const toMap = (m: Record<string, string | null> | undefined) => ({ key_value: Object.entries(m ?? {}).map(([key, value]) => ({ key, value })) });
const fromMap = (m: { key_value?: { key: string; value?: string | null }[] } | undefined): Record<string, string | null> =>
  Object.fromEntries((m?.key_value ?? []).map((kv) => [kv.key, kv.value ?? null]));
const num = (v: unknown) => (typeof v === "bigint" ? Number(v) : (v as number));

/** Encodes the state as a single-part checkpoint; returns its bytes and the number of actions. */
export async function writeCheckpoint(state: DeltaState): Promise<{ bytes: Uint8Array; size: number }> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  const writer = await parquetLib().ParquetWriter.openStream(SCHEMA(), sink);
  let size = 0;
  await writer.appendRow({ protocol: state.protocol });
  const m = state.metadata!;
  await writer.appendRow({
    metaData: {
      id: m.id,
      name: m.name ?? undefined,
      format: { provider: m.format.provider, options: toMap(m.format.options) },
      schemaString: m.schemaString,
      partitionColumns: { list: m.partitionColumns.map((element) => ({ element })) },
      configuration: toMap(m.configuration),
      createdTime: m.createdTime,
    },
  });
  size += 2;
  for (const [appId, t] of state.txns) {
    await writer.appendRow({ txn: { appId, version: t.version, lastUpdated: t.lastUpdated } });
    size++;
  }
  for (const a of state.files.values()) {
    await writer.appendRow({
      add: { path: a.path, partitionValues: toMap(a.partitionValues), size: a.size, modificationTime: a.modificationTime, dataChange: false, stats: a.stats },
    });
    size++;
  }
  await writer.close();
  return { bytes: Buffer.concat(chunks), size };
}

/** Reads a checkpoint this module wrote (or any single-part one whose columns parquetjs can decode). */
export async function readCheckpoint(bytes: Uint8Array, into: DeltaState): Promise<void> {
  const reader = await parquetLib().ParquetReader.openBuffer(Buffer.from(bytes));
  try {
    const cursor = reader.getCursor();
    for (let row = await cursor.next(); row; row = await cursor.next()) {
      const r = row as Record<string, any>;
      if (r.protocol) into.protocol = { minReaderVersion: num(r.protocol.minReaderVersion), minWriterVersion: num(r.protocol.minWriterVersion) };
      if (r.metaData) {
        const md = r.metaData;
        const meta: MetadataAction = {
          id: md.id,
          name: md.name ?? null,
          format: { provider: md.format?.provider ?? "parquet", options: fromMap(md.format?.options) as Record<string, string> },
          schemaString: md.schemaString,
          partitionColumns: (md.partitionColumns?.list ?? []).map((e: { element: string }) => e.element),
          configuration: fromMap(md.configuration) as Record<string, string>,
          createdTime: num(md.createdTime),
        };
        into.metadata = meta;
      }
      if (r.txn) into.txns.set(r.txn.appId, { version: num(r.txn.version), lastUpdated: num(r.txn.lastUpdated) });
      if (r.add) {
        const a: AddAction = {
          path: r.add.path,
          partitionValues: fromMap(r.add.partitionValues),
          size: num(r.add.size),
          modificationTime: num(r.add.modificationTime),
          dataChange: false,
          stats: r.add.stats ?? undefined,
        };
        into.files.set(a.path, a);
      }
      if (r.remove) into.files.delete(r.remove.path);
    }
  } finally {
    await reader.close();
  }
}
