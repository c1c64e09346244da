/**
 * `filesystem` (Arroyo-compatible), on a local directory or an S3 prefix:
 * - an exactly-once sink writing Parquet or newline-delimited JSON files,
 *   rolled by size, age or inactivity, partitioned by event time and columns.
 *   Files become visible only when the checkpoint covering their rows
 *   completes; a checkpoint can fall in the middle of a file (see sink.ts);
 * - an exactly-once source reading JSON lines, CSV, Parquet and Avro object
 *   container files (optionally gzip/zstd), one split per file, with byte or
 *   row positions in the checkpoint, and new files picked up while running
 *   with `source.watch` (see source.ts).
 */
import { statSync } from "node:fs";
import { basename, dirname } from "node:path";
import { defineConnector, definePlugin, opt, t, type FileAccess, type SinkContext, type SourceContext } from "../../core/plugin-api/index.ts";
import type { CsvOptionValues } from "../format-csv/index.ts";
import { parquetFileFormat } from "../format-parquet/index.ts";
import { lineEncoders, parquetEncoders } from "./encoders.ts";
import type { FileKind } from "./file-readers.ts";
import { compileTimePattern, parseLocation, splitGlob } from "./paths.ts";
import type { RollingPolicy, SinkSettings } from "./sink.ts";
import type { Storage } from "./storage.ts";
import { tableFormat } from "./table-formats.ts";
import { importFor, requirePackages } from "../shared/lazy.ts";

const PLUGIN = "connector-filesystem";
requirePackages(PLUGIN, import.meta.url, ["@aws-sdk/client-s3", "csv-parse", "avsc"]);
// Readers, writers and storage (with the S3 client, Parquet, Avro and CSV code) load when a job first opens a table.
const storageModule = () => importFor(PLUGIN, () => import("./storage.ts"));

const MIN_PART = 5 * 1024 * 1024;

export const options = {
  path: opt.string({
    required: true,
    description:
      "Where files are: /local/dir, file:///dir, s3://bucket/prefix, https://bucket.s3.region.amazonaws.com/prefix or s3::http://host:port/bucket/prefix; a source may end it with a glob ('/data/*.json', 's3://b/logs/**/*.csv')",
  }),
  "source.regex_pattern": opt.string({ description: "Source: read only files whose path under 'path' matches this regular expression (searched, not anchored)" }),
  "source.compression": opt.enum(["auto", "none", "gzip", "zstd"] as const, {
    default: "auto",
    description: "Source: how record files are compressed; 'auto' by extension (.gz, .zst); Parquet and Avro files compress inside",
  }),
  "source.order": opt.enum(["name", "modification_time"] as const, { default: "name", description: "Source: the order each subtask reads its files in" }),
  "source.watch": opt.boolean({ default: false, description: "Source: keep listing the location and read new files as they appear (else end once the files are read)" }),
  "source.watch_interval": opt.duration({ min: 100_000, default: 10_000_000, description: "Source with source.watch: how often to list the location ('10s')" }),
  "rolling_policy.file_size": opt.size({ min: 1, default: 128 * 1024 * 1024, description: "Roll a file once it holds this much ('128MB')" }),
  "rolling_policy.interval": opt.duration({ min: 1, description: "Roll a file this long after it was opened ('60s', '1h')" }),
  rollover_seconds: opt.duration({ min: 1, description: "Same as rolling_policy.interval, in seconds (Arroyo 0.5 spelling)" }),
  "rolling_policy.inactivity_interval": opt.duration({ min: 1, description: "Roll a file that received no row for this long" }),
  "filename.prefix": opt.string({ default: "", description: "Start of every file name" }),
  "filename.suffix": opt.string({ default: "", description: "End of every file name, before the extension (.parquet, .json, .json.gz)" }),
  "partitioning.time_pattern": opt.string({ description: "strftime pattern over event time (UTC) giving a directory per partition, e.g. 'year=%Y/month=%m/day=%d/hour=%H'" }),
  "partitioning.fields": opt.string({ description: "Comma-separated columns giving directories name=value, after the time pattern" }),
  "multipart.target_part_size": opt.size({ min: MIN_PART, default: MIN_PART, description: "S3 multipart part size (at least 5 MiB); what is not a full part at a checkpoint is kept in it" }),
  compression: opt.enum(["none", "gzip"] as const, { default: "none", description: "Whole-file compression of record formats (json lines → .json.gz); Parquet uses parquet.compression" }),
  "storage.aws_region": opt.string({ description: "AWS region (else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1)" }),
  "storage.aws_endpoint": opt.string({ description: "S3-compatible endpoint URL, e.g. http://127.0.0.1:9000 (path-style addressing)" }),
  "storage.aws_access_key_id": opt.string({ description: "Access key (else AWS_ACCESS_KEY_ID or the SDK's usual sources)" }),
  "storage.aws_secret_access_key": opt.string({ secret: true, description: "Secret key (else AWS_SECRET_ACCESS_KEY or the SDK's usual sources)" }),
  table_format: opt.enum(["none", "delta", "iceberg"] as const, { default: "none", description: "Publish the files as a Delta Lake or Iceberg table (as connector = 'delta' / 'iceberg' with their default options)" }),
};

export type Options = {
  path: string;
  "source.regex_pattern"?: string;
  "source.compression": "auto" | "none" | "gzip" | "zstd";
  "source.order": "name" | "modification_time";
  "source.watch": boolean;
  "source.watch_interval": number;
  "rolling_policy.file_size": number;
  "rolling_policy.interval"?: number;
  rollover_seconds?: number;
  "rolling_policy.inactivity_interval"?: number;
  "filename.prefix": string;
  "filename.suffix": string;
  "partitioning.time_pattern"?: string;
  "partitioning.fields"?: string;
  "multipart.target_part_size": number;
  compression: "none" | "gzip";
  "storage.aws_region"?: string;
  "storage.aws_endpoint"?: string;
  "storage.aws_access_key_id"?: string;
  "storage.aws_secret_access_key"?: string;
  table_format?: "none" | "delta" | "iceberg";
};

export function partitionFields(o: Options): string[] {
  return (o["partitioning.fields"] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

/** Options that only one role takes, with their defaults (a value other than the default was given). */
const SINK_ONLY = {
  "rolling_policy.file_size": options["rolling_policy.file_size"].default,
  "rolling_policy.interval": undefined,
  rollover_seconds: undefined,
  "rolling_policy.inactivity_interval": undefined,
  "filename.prefix": "",
  "filename.suffix": "",
  "partitioning.time_pattern": undefined,
  "partitioning.fields": undefined,
  "multipart.target_part_size": MIN_PART,
  compression: "none",
} as const;
const SOURCE_ONLY = {
  "source.regex_pattern": undefined,
  "source.compression": "auto",
  "source.order": "name",
  "source.watch": false,
  "source.watch_interval": options["source.watch_interval"].default,
} as const;

function checkRoleOptions(o: Options, role: "source" | "sink"): void {
  const other = role === "source" ? SINK_ONLY : SOURCE_ONLY;
  for (const [k, def] of Object.entries(other)) {
    if (o[k as keyof Options] !== def) {
      throw new Error(
        `option '${k}' applies to ${role === "source" ? "sinks" : "sources"}, but this table is read${role === "source" ? "" : " into"} as a ${role}; remove it` +
          (role === "source" && k === "compression" ? " (a source takes source.compression)" : ""),
      );
    }
  }
}

export function checkOptions(o: Options, role: "source" | "sink" = "sink"): void {
  const glob = splitGlob(o.path);
  if (glob.pattern !== null && role === "sink") throw new Error(`option 'path' of a sink is a directory; '${o.path}' holds a glob ('*', '?', '[' or '{'), which only a source reads`);
  const loc = parseLocation(glob.base);
  checkRoleOptions(o, role);
  if (o["source.regex_pattern"] !== undefined) {
    try {
      new RegExp(o["source.regex_pattern"]);
    } catch (err) {
      throw new Error(`option 'source.regex_pattern': ${(err as Error).message}; write a JavaScript regular expression such as '\\.json$'`);
    }
  }
  if (o["partitioning.time_pattern"] !== undefined) compileTimePattern(o["partitioning.time_pattern"]);
  if (o.rollover_seconds !== undefined && o["rolling_policy.interval"] !== undefined && o.rollover_seconds !== o["rolling_policy.interval"]) {
    throw new Error("options 'rollover_seconds' and 'rolling_policy.interval' disagree; give only one");
  }
  const hasKey = o["storage.aws_access_key_id"] !== undefined;
  const hasSecret = o["storage.aws_secret_access_key"] !== undefined;
  if (hasKey !== hasSecret) {
    throw new Error(`option '${hasKey ? "storage.aws_secret_access_key" : "storage.aws_access_key_id"}' is missing; give both keys or neither (then AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY are used)`);
  }
  if (loc.kind === "local") {
    for (const k of ["storage.aws_region", "storage.aws_endpoint", "storage.aws_access_key_id"] as const) {
      if (o[k] !== undefined) throw new Error(`option '${k}' applies to s3:// paths, but 'path' is the local directory '${loc.dir}'`);
    }
  }
  if (o["filename.prefix"].includes("/") || o["filename.suffix"].includes("/")) {
    throw new Error("options 'filename.prefix' and 'filename.suffix' cannot contain '/'; use partitioning for directories");
  }
  // Partition directories stay under the path, whatever the pattern's literal text says.
  if (o["partitioning.time_pattern"]?.split("/").some((part, i) => part === ".." || (i === 0 && part === ""))) {
    throw new Error("option 'partitioning.time_pattern' gives directories under 'path': it cannot start with '/' or contain '..'");
  }
}

/** The rolling options as the writer takes them (shared with the table-format sinks). */
export function rollingPolicy(o: Pick<Options, "rolling_policy.file_size" | "rolling_policy.interval" | "rollover_seconds" | "rolling_policy.inactivity_interval">): RollingPolicy {
  return {
    fileSize: o["rolling_policy.file_size"],
    intervalMicros: o["rolling_policy.interval"] ?? o.rollover_seconds ?? null,
    inactivityMicros: o["rolling_policy.inactivity_interval"] ?? null,
  };
}

/** A local directory checked against the job's file policy (the control plane confines it; the CLI does not). */
export const allowedDir = (files: FileAccess | undefined, dir: string) => (files ? files.resolve(dir, "path") : dir);

const SINK_FORMATS = new Set(["parquet", "json", "debezium_json", "raw_string", "csv"]);
const LINE_FORMATS = new Set(["json", "debezium_json", "raw_string"]);
/** The extension of the files a line format writes, where it is not .json. */
const LINE_EXTENSIONS: Record<string, string> = { raw_string: "txt", csv: "csv" };

/** How the source reads files of a format; throws naming the option when it cannot. */
function fileKindOf(format: string, o: Options, c: SourceContext<Options> | undefined): FileKind {
  const wholeFile = format === "parquet" || format === "avro";
  if (wholeFile && o["source.compression"] !== "auto" && o["source.compression"] !== "none") {
    throw new Error(`option 'source.compression' = '${o["source.compression"]}' is for record files; ${format === "parquet" ? "Parquet compresses its pages" : "Avro files compress their blocks"}, so leave it out`);
  }
  if (format === "parquet") return { kind: "parquet" };
  if (format === "avro") return { kind: "avro" };
  if (format === "csv") return { kind: "csv", options: (c?.formatOptions ?? {}) as unknown as CsvOptionValues };
  if (LINE_FORMATS.has(format)) {
    if (c && !c.format) throw new Error(`filesystem source '${c.tableName}': format '${format}' has no record reader`);
    return { kind: "lines", format: c?.format as never };
  }
  throw new Error(
    `option 'format': the filesystem source reads 'json' (and other line formats: ${[...LINE_FORMATS].filter((f) => f !== "json").map((f) => `'${f}'`).join(", ")}), 'csv', 'parquet' and 'avro' files, not '${format}'`,
  );
}

function sourceSettings(o: Options, c: SourceContext<Options>, storage: Storage) {
  if (!c.formatName) throw new Error(`filesystem source '${c.tableName}' needs a format: add format = 'json', 'csv', 'parquet' or 'avro'`);
  const kind = fileKindOf(c.formatName, o, c);
  const wholeFile = kind.kind === "parquet" || kind.kind === "avro";
  return {
    storage,
    order: o["source.order"],
    watchMs: o["source.watch"] ? o["source.watch_interval"] / 1000 : null,
    compression: wholeFile ? ("none" as const) : o["source.compression"],
    kind,
  };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function globMatcher(pattern: string): (path: string) => boolean {
  const glob = new Bun.Glob(pattern);
  return (p) => glob.match(p);
}

export const filesystem = defineConnector({
  name: "filesystem",
  description: "Exactly-once files on a local directory or S3: a sink writing Parquet, JSON lines or CSV, rolled and partitioned; a source reading JSON lines, CSV, Parquet and Avro files, new ones as they appear",
  options,
  needsFormat: true,
  metadata: { path: { type: t.string(), description: "Source: the file a row was read from, relative to 'path'" } },
  validate(table) {
    const o = table.options as unknown as Options;
    if (o.table_format && o.table_format !== "none") {
      if (table.role === "source") throw new Error(`option 'table_format' applies to sinks; read the files without it`);
      const tf = tableFormat(o.table_format, o);
      if (o.compression !== "none") throw new Error(`option 'compression' is for record formats; with table_format = '${o.table_format}' files are Parquet: use parquet.compression`);
      return tf.connector.validate?.({ ...table, options: tf.options });
    }
    if (table.role === "lookup") throw new Error("filesystem tables cannot be lookup tables"); // not declared a lookup source: never reached
    checkOptions(o, table.role);
    const loc = parseLocation(splitGlob(o.path).base);
    // `{{ VAR }}` left for the worker to resolve is checked there, when the sink starts.
    if (loc.kind === "local" && !o.path.includes("{{")) allowedDir(table.files, loc.dir);
    if (table.role === "source") {
      if (table.format) fileKindOf(table.format.name, o, undefined);
      return;
    }
    if (table.format && !SINK_FORMATS.has(table.format.name)) {
      throw new Error(`option 'format': the filesystem sink writes ${[...SINK_FORMATS].map((f) => `'${f}'`).join(", ")} files, not '${table.format.name}'`);
    }
    const cols = table.fields.map((f) => f.name.toLowerCase());
    if (cols.length > 0) {
      for (const name of partitionFields(o)) {
        if (!cols.includes(name.toLowerCase())) {
          throw new Error(`option 'partitioning.fields' names column '${name}', which table '${table.name}' does not have; columns: ${table.fields.map((f) => f.name).join(", ")}`);
        }
      }
    }
  },
  async preflight(table, job) {
    const o = table.options as unknown as Options;
    if (!o.table_format || o.table_format === "none") return;
    const tf = tableFormat(o.table_format, o);
    await tf.connector.preflight?.({ ...table, options: tf.options }, job);
  },
  source: {
    async create(ctx) {
      const c = ctx as SourceContext<Options>;
      const o = c.options;
      checkOptions(o, "source");
      const [{ storageFor, LocalStorage }, { FileSystemSourceReader }] = await Promise.all([storageModule(), importFor(PLUGIN, () => import("./source.ts"))]);
      const { base, pattern } = splitGlob(o.path);
      const storage = storageFor(o, c.files, "filesystem source", base);
      let match = pattern === null ? (_: string) => true : globMatcher(pattern);
      // A local path naming one file reads that file.
      if (storage instanceof LocalStorage && pattern === null && isFile(storage.root)) {
        const name = basename(storage.root);
        return new FileSystemSourceReader(c as SourceContext<unknown>, {
          ...sourceSettings(o, c, new LocalStorage(dirname(storage.root), "filesystem source")),
          match: (p) => p === name,
        });
      }
      const regex = o["source.regex_pattern"] !== undefined ? new RegExp(o["source.regex_pattern"]) : null;
      if (regex) {
        const glob = match;
        match = (p) => glob(p) && regex.test(p);
      }
      return new FileSystemSourceReader(c as SourceContext<unknown>, { ...sourceSettings(o, c, storage), match });
    },
  },
  sink: {
    async create(ctx) {
      const c = ctx as SinkContext<Options>;
      const o = c.options;
      if (o.table_format && o.table_format !== "none") {
        const tf = tableFormat(o.table_format, o);
        return tf.connector.sink!.create({ ...c, options: tf.options });
      }
      checkOptions(o, "sink");
      const format = c.format;
      if (!format) throw new Error(`filesystem sink '${c.tableName}' needs a format: add format = 'parquet' or format = 'json'`);
      let encoders;
      if (c.formatName === "parquet") {
        if (o.compression !== "none") {
          throw new Error(`option 'compression' = '${o.compression}' is for record formats; Parquet compresses its pages: use parquet.compression = 'gzip' (or 'zstd', 'snappy')`);
        }
        encoders = parquetEncoders(parquetFileFormat(c.formatOptions ?? {}, c.fields));
      } else {
        // Line formats: JSON ones are .json; raw_string writes each value as a line of text; csv a row a line after its header.
        encoders = lineEncoders(format, o.compression === "gzip", LINE_EXTENSIONS[c.formatName ?? ""] ?? "json");
      }
      const settings: SinkSettings = {
        rolling: rollingPolicy(o),
        timePattern: o["partitioning.time_pattern"] ?? null,
        partitionFields: partitionFields(o),
        prefix: o["filename.prefix"],
        suffix: o["filename.suffix"],
      };
      const [{ storageFor }, { FileSystemSinkWriter }] = await Promise.all([storageModule(), importFor(PLUGIN, () => import("./sink.ts"))]);
      return FileSystemSinkWriter.create(c as SinkContext<unknown>, storageFor(o, c.files), encoders, settings);
    },
  },
});

export default definePlugin({ name: "connector-filesystem", version: "0.1.0", connectors: [filesystem] });
