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
import { defineConnector, definePlugin, opt, type Field } from "../../core/plugin-api/index.ts";
import { checkOptions, partitionFields, type Options as FsOptions } from "../connector-filesystem/index.ts";
import { registerTableFormat } from "../connector-filesystem/table-formats.ts";
import { asFileSinkOptions, tableSinkOptions, validateTableSink } from "../shared/lakehouse/table-sink.ts";
import { importFor } from "../shared/lazy.ts";
import { deltaPartitioning, deltaSchemaString, deltaType, type DeltaPartitioning } from "./schema.ts";

/** The log, the S3 client and Parquet load when a job (or a preflight) first opens a table: sink.ts. */
const sinkModule = () => importFor("connector-delta", () => import("./sink.ts"));

export const deltaOptions = {
  ...tableSinkOptions(),
  "delta.checkpoint_interval": opt.integer({ min: 0, default: 10, description: "Write a log checkpoint every this many versions (0: never)" }),
  "delta.table_name": opt.string({ description: "The table's name in its metadata, when the sink creates it" }),
};

export type Options = FsOptions & { "delta.checkpoint_interval": number; "delta.table_name"?: string };

export function plan(o: Options, fields: Field[]): { partitioning: DeltaPartitioning; schema: string } {
  checkOptions(asFileSinkOptions(o));
  for (const f of fields) deltaType(f);
  const partitioning = deltaPartitioning(o["partitioning.time_pattern"], partitionFields(o), fields);
  return { partitioning, schema: deltaSchemaString(fields, partitioning.time.map((t) => t.name)) };
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
    await (await sinkModule()).preflight(table);
  },
  sink: {
    async create(ctx) {
      return (await sinkModule()).createSink(ctx);
    },
  },
});

registerTableFormat("delta", delta);

export default definePlugin({ name: "connector-delta", version: "0.1.0", connectors: [delta] });
