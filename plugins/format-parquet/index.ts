/**
 * `parquet`: columnar files, written and read by file connectors (connector
 * 'filesystem'). Parquet encodes whole files rather than records: a file sink
 * sees the table's format name and options and builds a `ParquetFileFormat`
 * (one `ParquetFileEncoder` per file), a file source opens a
 * `ParquetFileDecoder` per file; record connectors are refused at planning.
 */
import { defineFormat, definePlugin, opt, type Field } from "../../core/plugin-api/index.ts";
import { lazyRequire } from "../shared/lazy.ts";
import type { ParquetFileEncoder, ParquetFileState } from "./encoder.ts";
import type { ParquetCodecName } from "./parquetjs.ts";
import { parquetjsEntry } from "./parquetjs-install.ts";

export type { ParquetFileEncoder, ParquetFileState } from "./encoder.ts";
export type { ParquetByteSource } from "./decoder.ts";

/**
 * parquetjs (through encoder.ts) loads when a sink opens its first file, not
 * with the plugin, which only checks the installed copy; a file source imports
 * decoder.ts itself. `encoder()` is synchronous, hence require.
 */
parquetjsEntry();
const encoderModule = lazyRequire("format-parquet", () => require("./encoder.ts") as typeof import("./encoder.ts"));

const WHOLE_FILES = "format 'parquet' reads and writes whole files; use it with connector 'filesystem', 'delta' or 'iceberg' (or use format 'json' here)";
/** Connectors that write whole Parquet files (the table formats build on the filesystem sink). */
const FILE_CONNECTORS = new Set(["filesystem", "delta", "iceberg"]);

const COMPRESSIONS = ["uncompressed", "snappy", "gzip", "zstd"] as const;
export type ParquetCompression = (typeof COMPRESSIONS)[number];

/** What a file sink receives as the table's format when it is `parquet`. */
export interface ParquetFileFormat {
  readonly kind: "parquet-file";
  readonly compression: ParquetCompression;
  readonly rowGroupSize: number;
  encoder(restored?: ParquetFileState): ParquetFileEncoder;
}

const DEFAULT_ROW_GROUP = 122_880;

const codecOf: Record<ParquetCompression, ParquetCodecName> = {
  uncompressed: "UNCOMPRESSED",
  snappy: "SNAPPY",
  gzip: "GZIP",
  zstd: "ZSTD",
};

/** The file encoding a file sink uses for a table with format 'parquet', from the format's validated options. */
export function parquetFileFormat(options: Record<string, unknown>, fields: Field[], fieldIds?: number[]): ParquetFileFormat {
  const o = options as { compression?: ParquetCompression; parquet_compression?: ParquetCompression; row_group_size?: number };
  if (o.compression && o.parquet_compression && o.compression !== o.parquet_compression) {
    throw new Error(
      `format 'parquet': options 'parquet.compression' ('${o.compression}') and 'parquet_compression' ('${o.parquet_compression}') disagree; give only one`,
    );
  }
  const compression: ParquetCompression = o.compression ?? o.parquet_compression ?? "zstd";
  const rowGroupSize = o.row_group_size ?? DEFAULT_ROW_GROUP;
  return {
    kind: "parquet-file",
    compression,
    rowGroupSize,
    encoder: (restored) => new (encoderModule().ParquetFileEncoder)(fields, { codec: codecOf[compression], fieldIds }, restored),
  };
}

export const parquet = defineFormat({
  name: "parquet",
  description: "Apache Parquet files (for file sinks such as connector 'filesystem')",
  options: {
    compression: opt.enum(COMPRESSIONS, { description: "Page compression (parquet.compression)" }),
    // The Arroyo 0.5 spelling, `parquet_compression = 'zstd'`.
    parquet_compression: opt.enum(COMPRESSIONS, { description: "Same as parquet.compression (Arroyo 0.5 spelling)" }),
    row_group_size: opt.integer({ min: 1, default: DEFAULT_ROW_GROUP, description: "Rows per row group (parquet.row_group_size); a checkpoint also ends a row group" }),
  },
  validate({ table }) {
    if (table.connector !== undefined && !FILE_CONNECTORS.has(table.connector)) throw new Error(WHOLE_FILES);
  },
  serializer: () => ({
    serialize(): never {
      throw new Error(WHOLE_FILES);
    },
  }),
  // A file source decodes whole files itself (formatName); records never come here.
  deserializer: () => ({
    deserialize(): never {
      throw new Error(WHOLE_FILES);
    },
  }),
});

export default definePlugin({ name: "format-parquet", version: "0.1.0", formats: [parquet] });
