/**
 * The Delta sink's run-time part, loaded when a job or a preflight first opens
 * a table (index.ts holds the options and planning checks): the transaction
 * log, its hook into the filesystem sink, and the S3 and Parquet code they need.
 */
import type { Field, FileAccess, SinkContext, TableInfo } from "../../core/plugin-api/index.ts";
import type { FileCommitLog, FinishedFile } from "../connector-filesystem/sink.ts";
import { storageFor, type ReadyFile } from "../connector-filesystem/storage.ts";
import type { ParquetFileState } from "../format-parquet/index.ts";
import { parquetFileStats } from "../shared/lakehouse/stats.ts";
import { tableStoreFor } from "../shared/lakehouse/store.ts";
import { asFileSinkOptions, canInspect, createTableSinkWriter, writerId } from "../shared/lakehouse/table-sink.ts";
import { plan, type Options } from "./index.ts";
import { checkProtocol, DeltaLog, type AddAction } from "./log.ts";
import { checkAgainstTable, deltaPartitioner, deltaPath, partitionColumns, partitionValuesOf } from "./schema.ts";

function logFor(o: Options, files: FileAccess | undefined): DeltaLog {
  return new DeltaLog(tableStoreFor(storageFor(asFileSinkOptions(o), files)), o["delta.checkpoint_interval"]);
}

/** Checks an existing table can take the query's rows; throws naming what to change. */
async function checkExisting(log: DeltaLog, o: Options, fields: Field[]): Promise<void> {
  const { partitioning, schema } = plan(o, fields);
  const state = await log.load();
  if (state.version < 0) return;
  checkProtocol(state.protocol, log.store.describe);
  if (!state.metadata) throw new Error(`the Delta log at ${log.store.describe} has versions but no metadata; write to a new 'path'`);
  checkAgainstTable(log.store.describe, state.metadata.schemaString, state.metadata.partitionColumns, schema, partitionColumns(partitioning));
}

interface WriterState {
  appId: string;
}

/** The filesystem sink's hook into the Delta log. */
class DeltaCommitLog implements FileCommitLog {
  constructor(
    private readonly log: DeltaLog,
    private readonly fields: Field[],
    private readonly appId: string,
  ) {}

  describe(file: FinishedFile): AddAction {
    const s = parquetFileStats(this.fields, file.encoderState as ParquetFileState);
    const minValues: Record<string, number> = {};
    const maxValues: Record<string, number> = {};
    const nullCount: Record<string, number> = {};
    this.fields.forEach((f, c) => {
      const col = s.columns[c]!;
      nullCount[f.name] = col.nullCount;
      // Timestamps are left out: Delta truncates them to milliseconds in statistics, which needs care we skip.
      if (col.min !== undefined && col.max !== undefined && f.type.kind !== "timestamp" && Number.isFinite(col.min) && Number.isFinite(col.max)) {
        minValues[f.name] = col.min;
        maxValues[f.name] = col.max;
      }
    });
    return {
      path: deltaPath(file.relPath),
      partitionValues: partitionValuesOf(file.partition),
      size: file.size,
      modificationTime: 0,
      dataChange: true,
      stats: JSON.stringify({ numRecords: s.rows, minValues, maxValues, nullCount }),
    };
  }

  private adds(files: ReadyFile[]): AddAction[] {
    const now = Date.now();
    return files.map((f) => ({ ...(f.meta as AddAction), modificationTime: now }));
  }

  async commit(checkpointId: number, files: ReadyFile[], writer: unknown): Promise<void> {
    const appId = (writer as WriterState | undefined)?.appId ?? this.appId;
    await this.log.commit(appId, 2 * checkpointId, this.adds(files));
  }

  async recovered(checkpointId: number, files: ReadyFile[], writer: unknown): Promise<ReadyFile[]> {
    const appId = (writer as WriterState | undefined)?.appId ?? this.appId;
    await this.log.catchUp();
    return this.log.txnVersion(appId) >= 2 * checkpointId + 1 ? [] : files;
  }

  async close(checkpointId: number, files: ReadyFile[]): Promise<void> {
    await this.log.commit(this.appId, 2 * checkpointId + 1, this.adds(files));
  }

  state(): WriterState {
    return { appId: this.appId };
  }
}

export async function preflight(table: TableInfo<unknown>): Promise<void> {
  const o = table.options as unknown as Options;
  if (canInspect(table)) await checkExisting(logFor(o, table.files), o, table.fields);
}

export async function createSink(ctx: SinkContext<unknown>) {
  const c = ctx as SinkContext<Options>;
  const o = c.options;
  if (c.formatName !== "parquet") throw new Error(`delta sink '${c.tableName}' writes Parquet files: set format = 'parquet'`);
  const { partitioning, schema } = plan(o, c.fields);
  const storage = storageFor(asFileSinkOptions(o), c.files);
  const store = tableStoreFor(storage);
  await storage.check();
  await store.checkPutIfAbsent("_delta_log");
  const deltaLog = new DeltaLog(store, o["delta.checkpoint_interval"]);
  await checkExisting(deltaLog, o, c.fields);
  await deltaLog.create({
    name: o["delta.table_name"] ?? null,
    format: { provider: "parquet", options: {} },
    schemaString: schema,
    partitionColumns: partitionColumns(partitioning),
    configuration: {},
  });
  // The same schema checks again: a concurrent creator may have won with other metadata.
  await checkExisting(deltaLog, o, c.fields);
  const log = new DeltaCommitLog(deltaLog, c.fields, writerId(c as SinkContext<unknown>));
  return createTableSinkWriter(c, storage, deltaPartitioner(partitioning), log);
}
