/**
 * Appending data files to an Iceberg table as one snapshot per commit: a
 * manifest listing the files, a manifest list with the parent snapshot's
 * manifests plus the new one, and the snapshot made current through the
 * catalog. Every snapshot's summary names its writer and transaction version
 * (runnel.writer-id, runnel.txn-version, with the job and checkpoint ids), so a
 * commit repeated after a crash finds its snapshot and is not made twice, as
 * Flink's Iceberg committer does with its max-committed-checkpoint-id.
 */
import { randomUUID } from "node:crypto";
import { crashPoint } from "../../core/plugin-api/index.ts";
import type { TableStore } from "../shared/lakehouse/store.ts";
import type { IcebergCatalog, Snapshot, TableMetadata } from "./catalog.ts";
import { avroFile, MANIFEST_FILE_SCHEMA, manifestEntrySchema, readAvro, type ManifestFile } from "./manifest.ts";
import type { PartitionField } from "./transforms.ts";

/** A data file as the manifest lists it (bounds base64: it travels in JSON checkpoints). */
export interface DataFileMeta {
  file_path: string;
  partition: Record<string, unknown>;
  record_count: number;
  file_size_in_bytes: number;
  column_sizes: { key: number; value: number }[];
  value_counts: { key: number; value: number }[];
  null_value_counts: { key: number; value: number }[];
  lower_bounds: { key: number; value: string }[];
  upper_bounds: { key: number; value: string }[];
}

const bytes = (kv: { key: number; value: string }[]) => kv.map(({ key, value }) => ({ key, value: Buffer.from(value, "base64") }));

/** Iceberg's single-value serialisation of a partition value (the transform's result type). */
function partitionBytes(p: PartitionField, v: unknown): Buffer {
  const t = p.source.type;
  if (p.transform !== "identity" || (t.kind === "int" && t.bits === 32)) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v as number);
    return b;
  }
  if (t.kind === "int" || t.kind === "timestamp") {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(v as number));
    return b;
  }
  if (t.kind === "float") {
    const b = Buffer.alloc(t.bits === 32 ? 4 : 8);
    if (t.bits === 32) b.writeFloatLE(v as number);
    else b.writeDoubleLE(v as number);
    return b;
  }
  if (t.kind === "boolean") return Buffer.from([v ? 1 : 0]);
  return Buffer.from(String(v), "utf8");
}

/** A manifest's summary of one partition field: readers skip the manifest by it (no bounds means "all null"). */
function fieldSummary(p: PartitionField, values: unknown[]) {
  const present = values.filter((v) => v !== null && v !== undefined);
  const cmp = (a: unknown, b: unknown) => (typeof a === "string" ? Buffer.compare(Buffer.from(a), Buffer.from(b as string)) : (a as number) - (b as number));
  const sorted = present.sort(cmp);
  return {
    contains_null: present.length < values.length,
    contains_nan: false,
    lower_bound: sorted.length ? partitionBytes(p, sorted[0]) : null,
    upper_bound: sorted.length ? partitionBytes(p, sorted[sorted.length - 1]) : null,
  };
}

/** A random snapshot id that JSON numbers carry exactly. */
const snapshotId = () => Math.floor(Math.random() * (Number.MAX_SAFE_INTEGER - 1)) + 1;

export class IcebergTable {
  metadata!: TableMetadata;

  constructor(
    readonly catalog: IcebergCatalog,
    /** Where manifests go: the sink's location, as a store and as the URI their paths start with. */
    private readonly store: TableStore,
    private readonly location: string,
    private readonly partitioning: PartitionField[],
    private readonly jobId: string,
  ) {}

  async reload(): Promise<void> {
    const m = await this.catalog.load();
    if (!m) throw new Error(`the Iceberg table ${this.catalog.describe} disappeared while the job wrote to it`);
    this.metadata = m;
  }

  /** The highest transaction version a writer committed among the table's snapshots (-1: none). */
  txnVersion(appId: string): number {
    let v = -1;
    for (const s of this.metadata.snapshots ?? []) {
      if (s.summary?.["runnel.writer-id"] === appId) v = Math.max(v, Number(s.summary["runnel.txn-version"]));
    }
    return v;
  }

  async commit(appId: string, txnVersion: number, checkpointId: number, files: DataFileMeta[]): Promise<boolean> {
    if (files.length === 0) return false;
    const spec = this.metadata["partition-specs"].find((s) => s["spec-id"] === this.metadata["default-spec-id"])!;
    const schema = this.metadata.schemas.find((s) => s["schema-id"] === this.metadata["current-schema-id"])!;
    let manifest: { path: string; length: number } | null = null;
    for (let attempt = 0; attempt < 100; attempt++) {
      if (this.txnVersion(appId) >= txnVersion) return false;
      const id = snapshotId();
      if (!manifest) {
        // Written once: its entries inherit the snapshot id and sequence number, which a retry changes.
        const rel = `metadata/${randomUUID()}-m0.avro`;
        const entries = files.map((f) => ({
          status: 1,
          snapshot_id: null,
          sequence_number: null,
          file_sequence_number: null,
          data_file: {
            content: 0,
            file_path: f.file_path,
            file_format: "PARQUET",
            partition: f.partition,
            record_count: f.record_count,
            file_size_in_bytes: f.file_size_in_bytes,
            column_sizes: f.column_sizes,
            value_counts: f.value_counts,
            null_value_counts: f.null_value_counts,
            lower_bounds: bytes(f.lower_bounds),
            upper_bounds: bytes(f.upper_bounds),
            key_metadata: null,
            split_offsets: null,
            sort_order_id: null,
          },
        }));
        const data = await avroFile(manifestEntrySchema(this.partitioning), entries, {
          schema: JSON.stringify(schema),
          "schema-id": String(schema["schema-id"]),
          "partition-spec": JSON.stringify(spec.fields),
          "partition-spec-id": String(spec["spec-id"]),
          "format-version": "2",
          content: "data",
        });
        await this.store.put(rel, data);
        manifest = { path: `${this.location}/${rel}`, length: data.length };
      }
      const parentId = this.metadata["current-snapshot-id"];
      const parent = parentId !== undefined && parentId !== null && parentId >= 0 ? (this.metadata.snapshots ?? []).find((s) => s["snapshot-id"] === parentId) : undefined;
      const seq = (this.metadata["last-sequence-number"] ?? 0) + 1;
      const previous = parent ? await this.readManifestList(parent["manifest-list"]) : [];
      const rows = files.reduce((n, f) => n + f.record_count, 0);
      const entry: ManifestFile = {
        manifest_path: manifest.path,
        manifest_length: manifest.length,
        partition_spec_id: spec["spec-id"],
        content: 0,
        sequence_number: seq,
        min_sequence_number: seq,
        added_snapshot_id: id,
        added_files_count: files.length,
        existing_files_count: 0,
        deleted_files_count: 0,
        added_rows_count: rows,
        existing_rows_count: 0,
        deleted_rows_count: 0,
        partitions: this.partitioning.map((p) => fieldSummary(p, files.map((f) => f.partition[p.name]))),
        key_metadata: null,
      };
      const listRel = `metadata/snap-${id}-1-${randomUUID()}.avro`;
      const list = await avroFile(MANIFEST_FILE_SCHEMA, [entry, ...previous], {
        "snapshot-id": String(id),
        "parent-snapshot-id": parent ? String(parent["snapshot-id"]) : "null",
        "sequence-number": String(seq),
        "format-version": "2",
      });
      await this.store.put(listRel, list);
      const totalRows = Number(parent?.summary?.["total-records"] ?? 0) + rows;
      const totalFiles = Number(parent?.summary?.["total-data-files"] ?? 0) + files.length;
      const snapshot: Snapshot = {
        "snapshot-id": id,
        ...(parent ? { "parent-snapshot-id": parent["snapshot-id"] } : {}),
        "sequence-number": seq,
        "timestamp-ms": Date.now(),
        "manifest-list": `${this.location}/${listRel}`,
        summary: {
          operation: "append",
          "added-data-files": String(files.length),
          "added-records": String(rows),
          "added-files-size": String(files.reduce((n, f) => n + f.file_size_in_bytes, 0)),
          "total-records": String(totalRows),
          "total-data-files": String(totalFiles),
          "runnel.writer-id": appId,
          "runnel.txn-version": String(txnVersion),
          "runnel.job-id": this.jobId,
          "runnel.checkpoint-id": String(checkpointId),
        },
        "schema-id": schema["schema-id"],
      };
      crashPoint("iceberg-before-commit");
      const next = await this.catalog.commit(this.metadata, snapshot);
      if (!next) {
        await this.reload(); // another writer committed first: build on its snapshot
        continue;
      }
      this.metadata = next;
      this.lists.clear();
      this.lists.set(snapshot["manifest-list"], [entry, ...previous]);
      crashPoint("iceberg-after-commit");
      return true;
    }
    throw new Error(`Iceberg commit to ${this.catalog.describe} lost the race to other writers 100 times; too many concurrent writers`);
  }

  /** The manifest list this writer committed last, so the next commit does not read it back. */
  private readonly lists = new Map<string, ManifestFile[]>();

  private async readManifestList(uri: string): Promise<ManifestFile[]> {
    const known = this.lists.get(uri);
    if (known) return known;
    const rel = uri.startsWith(this.location + "/") ? uri.slice(this.location.length + 1) : null;
    if (rel === null) {
      throw new Error(
        `the Iceberg table ${this.catalog.describe} has its current manifest list at ${uri}, outside the sink's 'path' (${this.location}); set 'path' to the table's location`,
      );
    }
    const data = await this.store.get(rel);
    if (!data) throw new Error(`the Iceberg table ${this.catalog.describe} lists ${uri}, which does not exist`);
    return readAvro<ManifestFile>(data);
  }
}
