/**
 * `delta`: an exactly-once Delta Lake sink. The data files are the filesystem
 * sink's (Parquet, rolled by size or time, checkpoints in the middle of files,
 * local disk or S3); what this adds is the transaction log: the files a
 * completed checkpoint covers become one log version, with partition values
 * and statistics, tagged with a `txn` action (appId = job, table, subtask and
 * a writer id; version = 2 × checkpoint id) so that a commit repeated after a
 * crash is recognised and not made twice.
 *
 * Transaction versions: the files prepared at checkpoint C commit as 2C; the
 * files a job finishes when it ends right after C (what a restore from C
 * would finish) commit as 2C + 1, so a restore from C knows they are there.
 */
import { defineConnector, definePlugin, opt, type Field, type FileAccess, type SinkContext } from "../../core/plugin-api/index.ts";
import { checkOptions, partitionFields, storageFor, type Options as FsOptions } from "../connector-filesystem/index.ts";
import { registerTableFormat } from "../connector-filesystem/table-formats.ts";
import type { FileCommitLog, FinishedFile } from "../connector-filesystem/sink.ts";
import type { ReadyFile } from "../connector-filesystem/storage.ts";
import type { ParquetFileState } from "../format-parquet/index.ts";
import { parquetFileStats } from "../shared/lakehouse/stats.ts";
import { tableStoreFor } from "../shared/lakehouse/store.ts";
import { asFileSinkOptions, canInspect, createTableSinkWriter, tableSinkOptions, validateTableSink, writerId } from "../shared/lakehouse/table-sink.ts";
import { checkProtocol, DeltaLog, type AddAction } from "./log.ts";
import { checkAgainstTable, deltaPartitioner, deltaPartitioning, deltaPath, deltaSchemaString, deltaType, partitionColumns, partitionValuesOf, type DeltaPartitioning } from "./schema.ts";

export const deltaOptions = {
  ...tableSinkOptions(),
  "delta.checkpoint_interval": opt.integer({ min: 0, default: 10, description: "Write a log checkpoint every this many versions (0: never)" }),
  "delta.table_name": opt.string({ description: "The table's name in its metadata, when the sink creates it" }),
};

type Options = FsOptions & { "delta.checkpoint_interval": number; "delta.table_name"?: string };

function plan(o: Options, fields: Field[]): { partitioning: DeltaPartitioning; schema: string } {
  checkOptions(asFileSinkOptions(o));
  for (const f of fields) deltaType(f);
  const partitioning = deltaPartitioning(o["partitioning.time_pattern"], partitionFields(o), fields);
  return { partitioning, schema: deltaSchemaString(fields, partitioning.time.map((t) => t.name)) };
}

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

export const delta = defineConnector({
  name: "delta",
  description: "Exactly-once Delta Lake table (Parquet files and a transaction log) on a local directory or S3",
  options: deltaOptions,
  needsFormat: true,
  validate(table) {
    if (validateTableSink("delta", table)) plan(table.options as unknown as Options, table.fields);
  },
  async preflight(table) {
    const o = table.options as unknown as Options;
    if (canInspect(table)) await checkExisting(logFor(o, table.files), o, table.fields);
  },
  sink: {
    async create(ctx) {
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
    },
  },
});

registerTableFormat("delta", delta);

export default definePlugin({ name: "connector-delta", version: "0.1.0", connectors: [delta] });
