/**
 * `iceberg`: an exactly-once Apache Iceberg sink. The data files are the
 * filesystem sink's (Parquet with field ids, rolled by size or time,
 * checkpoints in the middle of files, local disk or S3); the files a completed
 * checkpoint covers become one append snapshot (Avro manifest and manifest
 * list per the spec) committed through a REST catalog or, locally, a file
 * catalog. Partition transforms identity, day, hour and bucket[N].
 *
 * Transaction versions in snapshot summaries, as the Delta sink's txn: the
 * files prepared at checkpoint C commit as 2C; the files a job finishes when
 * it ends right after C commit as 2C + 1, so a restore from C knows they are in.
 */
import { defineConnector, definePlugin, opt, type Field } from "../../core/plugin-api/index.ts";
import { checkOptions, type Options as FsOptions } from "../connector-filesystem/index.ts";
import { registerTableFormat } from "../connector-filesystem/table-formats.ts";
import { asFileSinkOptions, tableSinkOptions, validateTableSink } from "../shared/lakehouse/table-sink.ts";
import { importFor, requirePackages } from "../shared/lazy.ts";
import { icebergSchema, icebergType, parsePartitioning, type IcebergSchema } from "./schema.ts";
import type { PartitionField } from "./transforms.ts";

requirePackages("connector-iceberg", import.meta.url, ["avsc"]);
/** Catalogs, manifests (Avro), the S3 client and Parquet load when a job (or a preflight) first opens a table: sink.ts. */
const sinkModule = () => importFor("connector-iceberg", () => import("./sink.ts"));

export const icebergOptions = {
  ...tableSinkOptions(["partitioning.fields", "partitioning.time_pattern"]),
  "iceberg.catalog": opt.enum(["file", "rest"] as const, { default: "file", description: "Where the table's metadata is kept: files under 'path' (local use), or a REST catalog" }),
  "iceberg.catalog.uri": opt.string({ description: "The REST catalog's base URL, e.g. http://127.0.0.1:8181 (with iceberg.catalog = 'rest')" }),
  "iceberg.catalog.token": opt.string({ secret: true, description: "Bearer token for the REST catalog" }),
  "iceberg.table": opt.string({ description: "namespace.table in the REST catalog (with iceberg.catalog = 'rest')" }),
  "iceberg.partitioning": opt.string({ description: "Partition spec: comma-separated column, identity(col), day(col), hour(col), bucket(N, col)" }),
};

export type Options = Omit<FsOptions, "partitioning.fields" | "partitioning.time_pattern" | "compression"> & {
  "iceberg.catalog": "file" | "rest";
  "iceberg.catalog.uri"?: string;
  "iceberg.catalog.token"?: string;
  "iceberg.table"?: string;
  "iceberg.partitioning"?: string;
};

export const fs = (o: Options): FsOptions => asFileSinkOptions(o);

export function plan(o: Options, fields: Field[]): { schema: IcebergSchema; partitioning: PartitionField[] } {
  checkOptions(fs(o));
  for (const f of fields) icebergType(f);
  if (o["iceberg.catalog"] === "rest") {
    if (!o["iceberg.catalog.uri"]) throw new Error("option 'iceberg.catalog.uri' is missing; with iceberg.catalog = 'rest' give the catalog's URL, e.g. 'http://127.0.0.1:8181'");
    if (!o["iceberg.table"] || !/^[^.]+\.[^.]+$/.test(o["iceberg.table"])) {
      throw new Error(`option 'iceberg.table' ${o["iceberg.table"] ? `('${o["iceberg.table"]}') ` : ""}must be namespace.table with iceberg.catalog = 'rest', e.g. 'analytics.bids'`);
    }
  } else {
    for (const k of ["iceberg.catalog.uri", "iceberg.table", "iceberg.catalog.token"] as const) {
      if (o[k] !== undefined) throw new Error(`option '${k}' applies to iceberg.catalog = 'rest'; the file catalog keeps the table under 'path'`);
    }
  }
  const schema = icebergSchema(fields);
  return { schema, partitioning: parsePartitioning(o["iceberg.partitioning"], fields, schema) };
}

export const iceberg = defineConnector({
  name: "iceberg",
  description: "Exactly-once Apache Iceberg table (Parquet files, Avro manifests) through a REST catalog or a file catalog, on a local directory or S3",
  options: icebergOptions,
  needsFormat: true,
  validate(table) {
    if (validateTableSink("iceberg", table)) plan(table.options as unknown as Options, table.fields);
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

registerTableFormat("iceberg", iceberg);

export default definePlugin({ name: "connector-iceberg", version: "0.1.0", connectors: [iceberg] });
