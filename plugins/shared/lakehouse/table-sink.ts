/**
 * What the Delta Lake and Iceberg sinks share around the filesystem sink's
 * writer: the column types both can hold (and the refusals, with the cast to
 * write), the planning checks of a table sink, the writer id their logs
 * record, and the writer itself, built with the format's partitioner and log.
 */
import { randomUUID } from "node:crypto";
import type { Field, SinkContext, TableInfo } from "../../../core/plugin-api/index.ts";
import { options as fsOptions, rollingPolicy, type Options as FsOptions } from "../../connector-filesystem/index.ts";
import { parquetEncoders } from "../../connector-filesystem/encoders.ts";
import { parseLocation } from "../../connector-filesystem/paths.ts";
import type { FileCommitLog, FileSinkSnapshot, FileSystemSinkWriter, SinkSettings } from "../../connector-filesystem/sink.ts";
import type { Storage } from "../../connector-filesystem/storage.ts";
import { parquetFileFormat } from "../../format-parquet/index.ts";

/**
 * The filesystem connector's options a table sink takes: not the source's, not
 * record-file compression, not table_format, nor those in `without`.
 */
export function tableSinkOptions(without: string[] = []): Record<string, (typeof fsOptions)[keyof typeof fsOptions]> {
  return Object.fromEntries(
    Object.entries(fsOptions).filter(([k]) => !k.startsWith("source.") && k !== "compression" && k !== "table_format" && !without.includes(k)),
  );
}

const FS_DEFAULTS = Object.fromEntries(
  Object.entries(fsOptions as Record<string, { default?: unknown }>).filter(([, spec]) => spec.default !== undefined).map(([k, spec]) => [k, spec.default]),
);

/** A table sink's options as the filesystem sink's checks and storage take them (their defaults for the rest). */
export const asFileSinkOptions = (o: object): FsOptions => ({ ...FS_DEFAULTS, ...o, compression: "none", table_format: "none" }) as FsOptions;

/** The types a table format is asked for: what Runnel's Parquet files hold for each column. */
export type TableColumnKind = "boolean" | "int" | "long" | "float" | "double" | "string" | "timestamp" | "binary";

/** The kind of a column's values in the data files, or an Error naming the column and the cast to write. */
export function tableColumnKind(f: Field, format: string): TableColumnKind {
  const t = f.type;
  switch (t.kind) {
    case "boolean":
      return "boolean";
    case "int":
      if (t.unsigned) throw new Error(`column '${f.name}' is ${t.bits === 32 ? "INT" : "BIGINT"} UNSIGNED, which ${format} has no type for; CAST it to BIGINT in the INSERT`);
      return t.bits === 32 ? "int" : "long";
    case "float":
      return t.bits === 32 ? "float" : "double";
    case "decimal":
      throw new Error(`column '${f.name}' is DECIMAL(${t.precision},${t.scale}), which Runnel's Parquet files hold as DOUBLE; CAST it to DOUBLE in the INSERT (and declare it DOUBLE)`);
    case "string":
    case "json":
    case "array":
    case "struct":
    case "map":
      // JSON, arrays, structs and maps are written as JSON text, as the filesystem sink does.
      return "string";
    case "timestamp":
      return "timestamp";
    case "interval":
      // Microseconds.
      return "long";
    case "bytes":
      return "binary";
  }
}

/** The planning checks every table sink makes; false when the columns are not known yet (inferred). */
export function validateTableSink(connector: string, table: TableInfo<unknown>): boolean {
  if (table.role === "source") throw new Error(`connector '${connector}' is a sink; Runnel does not read ${connector} tables yet`);
  const path = (table.options as { path?: string }).path ?? "";
  const loc = parseLocation(path);
  if (loc.kind === "local" && !path.includes("{{") && table.files) table.files.resolve(loc.dir, "path");
  return table.fields.length > 0;
}

/** Whether preflight can look at the table (a sink with known columns and a resolved path). */
export const canInspect = (table: TableInfo<unknown>) =>
  table.role === "sink" && table.fields.length > 0 && !((table.options as { path?: string }).path ?? "").includes("{{");

/**
 * The id this writer's commits carry in the log: job, table and subtask, plus a
 * random part drawn at a fresh start and kept in checkpoints, so a job started
 * again from scratch never takes an earlier run's commits for its own.
 */
export function writerId(c: SinkContext<unknown>): string {
  const restored = (c.restored as FileSinkSnapshot | undefined)?.log as { appId?: string } | undefined;
  return restored?.appId ?? `runnel:${c.jobId ?? "job"}:${c.tableName}:${c.subtaskIndex}:${randomUUID().slice(0, 8)}`;
}

/** The filesystem sink's writer, publishing through a table format's log. */
type WriterOptions = Pick<
  FsOptions,
  "rolling_policy.file_size" | "rolling_policy.interval" | "rollover_seconds" | "rolling_policy.inactivity_interval" | "filename.prefix" | "filename.suffix"
>;

export async function createTableSinkWriter(
  c: SinkContext<WriterOptions>,
  storage: Storage,
  partitioner: SinkSettings["partitioner"],
  log: FileCommitLog,
  fieldIds?: number[],
): Promise<FileSystemSinkWriter> {
  const o = c.options;
  const settings: SinkSettings = {
    rolling: rollingPolicy(o),
    timePattern: null,
    partitionFields: [],
    prefix: o["filename.prefix"],
    suffix: o["filename.suffix"],
    partitioner,
    log,
  };
  const encoders = parquetEncoders(parquetFileFormat(c.formatOptions ?? {}, c.fields, fieldIds));
  // The writer (and the S3 client under it) loads with the first sink, not with the plugins planning loads this for.
  const { FileSystemSinkWriter } = await import("../../connector-filesystem/sink.ts");
  return FileSystemSinkWriter.create(c as SinkContext<unknown>, storage, encoders, settings);
}
