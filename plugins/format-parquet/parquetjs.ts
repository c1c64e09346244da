/**
 * The pieces of @dsnp/parquetjs this plugin builds on: the Thrift types of the
 * Parquet footer and page headers, their compact-protocol codec, and the
 * compression table (to which zstd is added here, from Bun's zstd).
 *
 * Resolved from the package's own folder so a copy elsewhere (a parent
 * node_modules) is never picked up by accident.
 */
import { createRequire } from "node:module";
import { parquetjsEntry } from "./parquetjs-install.ts";

const entry = parquetjsEntry();
const requireFromPkg = createRequire(entry);

/* eslint-disable @typescript-eslint/no-explicit-any */
export const thrift: any = requireFromPkg("./gen-nodejs/parquet_types.js");
const util: any = requireFromPkg("./lib/util.js");
const compression: any = requireFromPkg("./lib/compression.js");
export const Int64: any = requireFromPkg("node-int64");
/** The whole library (ParquetSchema, ParquetWriter, ParquetReader), for files of nested records such as a Delta log checkpoint; loaded on first use. */
export function parquetLib(): any {
  return requireFromPkg(entry);
}
/** ParquetReader and ParquetEnvelopeReader: footer, schema and column chunk decoding. */
export const parquetReaderModule: any = requireFromPkg("./lib/reader.js");

if (typeof util.serializeThrift !== "function" || typeof thrift.FileMetaData !== "function") {
  throw new Error(
    `@dsnp/parquetjs at ${entry} has no code (1.9.3 was published empty); pin @dsnp/parquetjs to 1.8.x and run bun install`,
  );
}

export function serializeThrift(obj: unknown): Buffer {
  return util.serializeThrift(obj);
}

export function decodeThrift<T>(obj: T, buf: Buffer): T {
  util.decodeThrift(obj, buf, 0);
  return obj;
}

/** Bun's zstd, registered in parquetjs's codec table so its reader and writer know ZSTD too. */
const methods = compression.PARQUET_COMPRESSION_METHODS as Record<string, { deflate(b: Buffer): any; inflate(b: Buffer): any }>;
if (!methods.ZSTD) {
  methods.ZSTD = {
    deflate: (value: Buffer) => Buffer.from(Bun.zstdCompressSync(value, { level: 3 })),
    inflate: (value: Buffer) => Buffer.from(Bun.zstdDecompressSync(value)),
  };
}

export type ParquetCodecName = "UNCOMPRESSED" | "SNAPPY" | "GZIP" | "ZSTD";

/** Compresses one page body with parquetjs's codec table (sync for every codec we offer). */
export function compressPage(codec: ParquetCodecName, body: Buffer): Buffer {
  if (codec === "UNCOMPRESSED") return body;
  const out = methods[codec]!.deflate(body);
  if (out instanceof Promise) throw new Error(`parquet codec ${codec} is asynchronous; it cannot be used here`);
  return Buffer.isBuffer(out) ? out : Buffer.from(out);
}

export function decompressPage(codec: ParquetCodecName, body: Buffer): Promise<Buffer> {
  return compression.inflate(codec, body);
}
