/**
 * Per-file column statistics for table logs (Delta `stats`, Iceberg manifest
 * metrics), read from the Parquet encoder's checkpointable state: its row
 * groups' metadata already carries null counts and, for signed numeric and
 * timestamp columns, min and max. Nothing is computed per row.
 */
import type { Field } from "../../../core/plugin-api/index.ts";
import type { ParquetFileState } from "../../format-parquet/index.ts";
import { decodeThrift, thrift } from "../../format-parquet/parquetjs.ts";

export interface ColumnStats {
  nullCount: number;
  /** Values as the engine holds them (numbers; µs for timestamps); absent when the encoder keeps no range. */
  min?: number;
  max?: number;
  /** Bytes of the column's chunks (compressed). */
  bytes: number;
}

export interface FileStats {
  rows: number;
  columns: ColumnStats[];
}

const int64 = (v: unknown): number => (v === undefined || v === null ? 0 : typeof v === "number" ? v : Number((v as { toNumber(): number }).toNumber()));

function decodePlain(f: Field, b: Buffer): number | undefined {
  switch (f.type.kind) {
    case "int":
      if (f.type.unsigned) return undefined;
      return f.type.bits === 32 ? b.readInt32LE(0) : Number(b.readBigInt64LE(0));
    case "timestamp":
    case "interval":
      return Number(b.readBigInt64LE(0));
    case "float":
      return f.type.bits === 32 ? b.readFloatLE(0) : b.readDoubleLE(0);
    case "decimal":
      return b.readDoubleLE(0);
    default:
      return undefined;
  }
}

export function parquetFileStats(fields: Field[], state: ParquetFileState): FileStats {
  const columns: ColumnStats[] = fields.map(() => ({ nullCount: 0, bytes: 0 }));
  const unknown = new Set<number>();
  for (const b64 of state.rowGroups) {
    const rg = decodeThrift(new thrift.RowGroup(), Buffer.from(b64, "base64"));
    rg.columns.forEach((cc: any, c: number) => {
      const col = columns[c];
      const f = fields[c];
      if (!col || !f) return;
      const meta = cc.meta_data;
      col.bytes += int64(meta.total_compressed_size);
      const st = meta.statistics;
      const nulls = int64(st?.null_count);
      col.nullCount += nulls;
      if (int64(meta.num_values) === nulls) return; // all null: says nothing of the range
      const lo = st?.min_value ? decodePlain(f, Buffer.from(st.min_value)) : undefined;
      const hi = st?.max_value ? decodePlain(f, Buffer.from(st.max_value)) : undefined;
      if (lo === undefined || hi === undefined) unknown.add(c);
      else {
        col.min = col.min === undefined ? lo : Math.min(col.min, lo);
        col.max = col.max === undefined ? hi : Math.max(col.max, hi);
      }
    });
  }
  // A row group with values but no range (NaN, bigint, text) leaves the file's range unknown.
  for (const c of unknown) {
    delete columns[c]!.min;
    delete columns[c]!.max;
  }
  return { rows: state.rows, columns };
}
