/**
 * The Iceberg sink's run-time part, loaded when a job or a preflight first
 * opens a table (index.ts holds the options and planning checks): catalogs,
 * the table's manifests and snapshots, its hook into the filesystem sink, and
 * the S3, Avro and Parquet code they need.
 */
import type { Field, FileAccess, SinkContext, TableInfo } from "../../core/plugin-api/index.ts";
import type { FileCommitLog, FinishedFile } from "../connector-filesystem/sink.ts";
import { LocalStorage, storageFor, type ReadyFile, type S3Storage, type Storage } from "../connector-filesystem/storage.ts";
import type { ParquetFileState } from "../format-parquet/index.ts";
import { parquetFileStats } from "../shared/lakehouse/stats.ts";
import { tableStoreFor } from "../shared/lakehouse/store.ts";
import { canInspect, createTableSinkWriter, writerId } from "../shared/lakehouse/table-sink.ts";
import { FileCatalog, RestCatalog, type IcebergCatalog } from "./catalog.ts";
import { fs, plan, type Options } from "./index.ts";
import { checkAgainstTable, nameMapping, partitionSpec } from "./schema.ts";
import { IcebergTable, type DataFileMeta } from "./table.ts";
import { applyTransform, dirValue, parseDirValue, type PartitionField } from "./transforms.ts";

/** The location URI files under the sink's path get (what manifests and metadata name them by). */
function locationOf(storage: Storage): string {
  if (storage instanceof LocalStorage) return `file://${storage.root.replace(/\/+$/, "")}`;
  const s = (storage as S3Storage).settings;
  return `s3://${s.bucket}${s.prefix ? `/${s.prefix.replace(/\/+$/, "")}` : ""}`;
}

function catalogFor(o: Options, storage: Storage): IcebergCatalog {
  if (o["iceberg.catalog"] === "rest") {
    const [ns, name] = o["iceberg.table"]!.split(".");
    return new RestCatalog(o["iceberg.catalog.uri"]!, ns!, name!, o["iceberg.catalog.token"]);
  }
  return new FileCatalog(tableStoreFor(storage), locationOf(storage));
}

/** Loads the table (creating it when missing unless `create` is false) and checks it takes the query's rows. */
async function openTable(
  o: Options,
  fields: Field[],
  files: FileAccess | undefined,
  jobId: string,
  create: boolean,
): Promise<{ table: IcebergTable; fieldIds: number[]; partitioning: PartitionField[] } | null> {
  const { schema, partitioning } = plan(o, fields);
  const storage = storageFor(fs(o), files);
  const catalog = catalogFor(o, storage);
  const location = locationOf(storage);
  let meta = await catalog.load();
  if (!meta) {
    if (!create) return null;
    meta = await catalog.create({
      location,
      schema,
      spec: partitionSpec(partitioning),
      properties: { "schema.name-mapping.default": nameMapping(schema), "write.format.default": "parquet", "runnel.created-by": "runnel" },
    });
  }
  if (meta["format-version"] !== 2 && meta["format-version"] !== 1) {
    throw new Error(`the Iceberg table ${catalog.describe} has format version ${meta["format-version"]}; Runnel writes versions 1 and 2. Write to another table`);
  }
  const current = meta.schemas.find((s) => s["schema-id"] === meta["current-schema-id"])!;
  const spec = meta["partition-specs"].find((s) => s["spec-id"] === meta["default-spec-id"])!;
  const ids = checkAgainstTable(catalog.describe, { schema: current, spec }, schema, partitioning);
  // The table's own ids: a table created elsewhere may number its columns differently.
  for (const p of partitioning) p.sourceId = ids.get(p.source.name)!;
  spec.fields.forEach((f, i) => (partitioning[i]!.fieldId = f["field-id"]));
  const table = new IcebergTable(catalog, tableStoreFor(storage), location, partitioning, jobId);
  table.metadata = meta;
  return { table, fieldIds: fields.map((f) => ids.get(f.name)!), partitioning };
}

interface WriterState {
  appId: string;
}

class IcebergCommitLog implements FileCommitLog {
  constructor(
    private readonly table: IcebergTable,
    private readonly fields: Field[],
    private readonly fieldIds: number[],
    private readonly partitioning: PartitionField[],
    private readonly location: string,
    private readonly appId: string,
  ) {}

  describe(file: FinishedFile): DataFileMeta {
    const s = parquetFileStats(this.fields, file.encoderState as ParquetFileState);
    const partition: Record<string, unknown> = {};
    const segs = file.partition ? file.partition.split("/") : [];
    this.partitioning.forEach((p, i) => (partition[p.name] = parseDirValue(p, segs[i]!.slice(segs[i]!.indexOf("=") + 1))));
    const meta: DataFileMeta = {
      file_path: `${this.location}/${file.relPath}`,
      partition,
      record_count: s.rows,
      file_size_in_bytes: file.size,
      column_sizes: [],
      value_counts: [],
      null_value_counts: [],
      lower_bounds: [],
      upper_bounds: [],
    };
    this.fields.forEach((f, c) => {
      const col = s.columns[c]!;
      const key = this.fieldIds[c]!;
      meta.column_sizes.push({ key, value: col.bytes });
      meta.value_counts.push({ key, value: s.rows });
      meta.null_value_counts.push({ key, value: col.nullCount });
      if (col.min !== undefined && col.max !== undefined) {
        const lo = boundBytes(f, col.min);
        const hi = boundBytes(f, col.max);
        if (lo && hi) {
          meta.lower_bounds.push({ key, value: lo });
          meta.upper_bounds.push({ key, value: hi });
        }
      }
    });
    return meta;
  }

  private metas = (files: ReadyFile[]) => files.map((f) => f.meta as DataFileMeta);

  async commit(checkpointId: number, files: ReadyFile[], writer: unknown): Promise<void> {
    const appId = (writer as WriterState | undefined)?.appId ?? this.appId;
    await this.table.reload();
    await this.table.commit(appId, 2 * checkpointId, checkpointId, this.metas(files));
  }

  async recovered(checkpointId: number, files: ReadyFile[], writer: unknown): Promise<ReadyFile[]> {
    const appId = (writer as WriterState | undefined)?.appId ?? this.appId;
    await this.table.reload();
    return this.table.txnVersion(appId) >= 2 * checkpointId + 1 ? [] : files;
  }

  async close(checkpointId: number, files: ReadyFile[]): Promise<void> {
    await this.table.reload();
    await this.table.commit(this.appId, 2 * checkpointId + 1, checkpointId, this.metas(files));
  }

  state(): WriterState {
    return { appId: this.appId };
  }
}

/** Iceberg's single-value serialisation of a numeric or timestamp bound, base64; null for other types. */
function boundBytes(f: Field, v: number): string | null {
  const t = f.type;
  let b: Buffer;
  if (t.kind === "int" && t.bits === 32) (b = Buffer.alloc(4)).writeInt32LE(v);
  else if ((t.kind === "int" && t.bits === 64) || t.kind === "timestamp" || t.kind === "interval") (b = Buffer.alloc(8)).writeBigInt64LE(BigInt(v));
  else if (t.kind === "float" && t.bits === 32) (b = Buffer.alloc(4)).writeFloatLE(v);
  else if (t.kind === "float") (b = Buffer.alloc(8)).writeDoubleLE(v);
  else return null;
  return b.toString("base64");
}

function icebergPartitioner(partitioning: PartitionField[]) {
  return (ctx: SinkContext<unknown>) => {
    if (partitioning.length === 0) return null;
    const cols = partitioning.map((p) => ({ p, idx: ctx.fields.findIndex((f) => f.name === p.source.name) }));
    return (batch: { rows: unknown[][] }, i: number): string => {
      let key = "";
      for (const { p, idx } of cols) key += `${key ? "/" : ""}${p.name}=${dirValue(p, applyTransform(p, batch.rows[i]![idx]))}`;
      return key;
    };
  };
}

export async function preflight(table: TableInfo<unknown>): Promise<void> {
  if (canInspect(table)) await openTable(table.options as unknown as Options, table.fields, table.files, "preflight", false);
}

export async function createSink(ctx: SinkContext<unknown>) {
  const c = ctx as SinkContext<Options>;
  const o = c.options;
  if (c.formatName !== "parquet") throw new Error(`iceberg sink '${c.tableName}' writes Parquet files: set format = 'parquet'`);
  const jobId = c.jobId ?? "job";
  const { table, fieldIds, partitioning } = (await openTable(o, c.fields, c.files, jobId, true))!;
  const storage = storageFor(fs(o), c.files);
  const log = new IcebergCommitLog(table, c.fields, fieldIds, partitioning, locationOf(storage), writerId(c as SinkContext<unknown>));
  return createTableSinkWriter(c, storage, icebergPartitioner(partitioning), log, fieldIds);
}
