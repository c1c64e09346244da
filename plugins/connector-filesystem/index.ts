/**
 * `filesystem` (Arroyo-compatible): an exactly-once sink writing Parquet or
 * newline-delimited JSON files to a local directory or an S3 prefix, rolled by
 * size, age or inactivity, partitioned by event time and columns. Files become
 * visible only when the checkpoint covering their rows completes; a
 * checkpoint can fall in the middle of a file (see sink.ts).
 */
import { defineConnector, definePlugin, opt, type FileAccess, type SinkContext } from "../../core/plugin-api/index.ts";
import { parquetFileFormat } from "../format-parquet/index.ts";
import { lineEncoders, parquetEncoders } from "./encoders.ts";
import { compileTimePattern, parseLocation } from "./paths.ts";
import { FileSystemSinkWriter, type RollingPolicy, type SinkSettings } from "./sink.ts";
import { LocalStorage, S3Storage, type Storage } from "./storage.ts";
import { tableFormat } from "./table-formats.ts";

const MIN_PART = 5 * 1024 * 1024;

export const options = {
  path: opt.string({
    required: true,
    description: "Where files go: /local/dir, file:///dir, s3://bucket/prefix, https://bucket.s3.region.amazonaws.com/prefix or s3::http://host:port/bucket/prefix",
  }),
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

export function checkOptions(o: Options): void {
  const loc = parseLocation(o.path);
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

export function storageFor(o: Options, files: FileAccess | undefined): Storage {
  const loc = parseLocation(o.path);
  if (loc.kind === "local") return new LocalStorage(allowedDir(files, loc.dir));
  return new S3Storage({
    bucket: loc.bucket,
    prefix: loc.prefix,
    region: o["storage.aws_region"] ?? loc.region,
    endpoint: o["storage.aws_endpoint"] ?? loc.endpoint,
    accessKeyId: o["storage.aws_access_key_id"],
    secretAccessKey: o["storage.aws_secret_access_key"],
    partSize: o["multipart.target_part_size"],
  });
}

export const filesystem = defineConnector({
  name: "filesystem",
  description: "Exactly-once Parquet or JSON-lines files on a local directory or S3, rolled and partitioned",
  options,
  needsFormat: true,
  validate(table) {
    const o = table.options as unknown as Options;
    if (o.table_format && o.table_format !== "none") {
      const tf = tableFormat(o.table_format, o);
      if (o.compression !== "none") throw new Error(`option 'compression' is for record formats; with table_format = '${o.table_format}' files are Parquet: use parquet.compression`);
      return tf.connector.validate?.({ ...table, options: tf.options });
    }
    checkOptions(o);
    const loc = parseLocation(o.path);
    // `{{ VAR }}` left for the worker to resolve is checked there, when the sink starts.
    if (loc.kind === "local" && !o.path.includes("{{")) allowedDir(table.files, loc.dir);
    if (table.role === "source") throw new Error("connector 'filesystem' is a sink; read files with 'single_file'");
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
  sink: {
    async create(ctx) {
      const c = ctx as SinkContext<Options>;
      const o = c.options;
      if (o.table_format && o.table_format !== "none") {
        const tf = tableFormat(o.table_format, o);
        return tf.connector.sink!.create({ ...c, options: tf.options });
      }
      checkOptions(o);
      const format = c.format;
      if (!format) throw new Error(`filesystem sink '${c.tableName}' needs a format: add format = 'parquet' or format = 'json'`);
      let encoders;
      if (c.formatName === "parquet") {
        if (o.compression !== "none") {
          throw new Error(`option 'compression' = '${o.compression}' is for record formats; Parquet compresses its pages: use parquet.compression = 'gzip' (or 'zstd', 'snappy')`);
        }
        encoders = parquetEncoders(parquetFileFormat(c.formatOptions ?? {}, c.fields));
      } else {
        encoders = lineEncoders(format, o.compression === "gzip", "json");
      }
      const settings: SinkSettings = {
        rolling: rollingPolicy(o),
        timePattern: o["partitioning.time_pattern"] ?? null,
        partitionFields: partitionFields(o),
        prefix: o["filename.prefix"],
        suffix: o["filename.suffix"],
      };
      return FileSystemSinkWriter.create(c as SinkContext<unknown>, storageFor(o, c.files), encoders, settings);
    },
  },
});

export default definePlugin({ name: "connector-filesystem", version: "0.1.0", connectors: [filesystem] });
