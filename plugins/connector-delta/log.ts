/**
 * A Delta Lake transaction log (_delta_log/) as one writer sees it: the
 * protocol, the metadata, the application transactions (`txn`) and the live
 * files, replayed from the latest checkpoint and the JSON commits after it,
 * then kept up to date in memory.
 *
 * A commit is the next version's JSON file, created only if absent (the
 * store's put-if-absent): a writer that loses the race reads the winner's
 * version and tries the next one. Each commit carries a `txn` action
 * (appId, version): a commit whose appId already holds that version or a
 * later one is not made again, which is how a commit repeated after a crash
 * is recognised, as Flink's and delta-rs's writers do.
 */
import { randomUUID } from "node:crypto";
import { crashPoint } from "../../core/plugin-api/index.ts";
import type { TableStore } from "../shared/lakehouse/store.ts";
import { readCheckpoint, writeCheckpoint } from "./checkpoint.ts";

export interface ProtocolAction {
  minReaderVersion: number;
  minWriterVersion: number;
  readerFeatures?: string[];
  writerFeatures?: string[];
}

export interface MetadataAction {
  id: string;
  name: string | null;
  format: { provider: string; options: Record<string, string> };
  schemaString: string;
  partitionColumns: string[];
  configuration: Record<string, string>;
  createdTime: number;
}

export interface AddAction {
  path: string;
  partitionValues: Record<string, string | null>;
  size: number;
  modificationTime: number;
  dataChange: boolean;
  stats?: string;
}

export interface DeltaState {
  version: number;
  protocol: ProtocolAction | null;
  metadata: MetadataAction | null;
  txns: Map<string, { version: number; lastUpdated: number }>;
  files: Map<string, AddAction>;
}

export class DeltaLogError extends Error {
  constructor(
    readonly code: "LOG_INCOMPLETE" | "UNSUPPORTED_PROTOCOL" | "SCHEMA_MISMATCH" | "COMMIT_CONFLICT",
    message: string,
  ) {
    super(message);
    this.name = "DeltaLogError";
  }
}

const LOG = "_delta_log";
const pad = (v: number) => String(v).padStart(20, "0");
const commitName = (v: number) => `${LOG}/${pad(v)}.json`;

/** Writer features this writer honours (it only appends, and checks no invariant). */
const WRITER_FEATURES = new Set(["appendOnly"]);

export function checkProtocol(p: ProtocolAction | null, where: string): void {
  if (!p) return;
  const readerOk = p.minReaderVersion <= 1 || (p.minReaderVersion === 3 && (p.readerFeatures ?? []).length === 0);
  const unknown = (p.writerFeatures ?? []).filter((f) => !WRITER_FEATURES.has(f));
  const writerOk = p.minWriterVersion <= 2 || (p.minWriterVersion === 7 && unknown.length === 0);
  if (!readerOk || !writerOk) {
    throw new DeltaLogError(
      "UNSUPPORTED_PROTOCOL",
      `the Delta table at ${where} needs reader version ${p.minReaderVersion} / writer version ${p.minWriterVersion}` +
        `${unknown.length ? ` with writer features ${unknown.join(", ")}` : ""}; Runnel writes tables of reader version 1 and writer version 2 ` +
        `(no column mapping, deletion vectors, invariants or generated columns). Write to a new 'path', or to a table created without those features`,
    );
  }
}

export class DeltaLog {
  state: DeltaState = { version: -1, protocol: null, metadata: null, txns: new Map(), files: new Map() };

  constructor(
    readonly store: TableStore,
    /** Write a checkpoint every this many versions. */
    private readonly checkpointInterval: number,
  ) {}

  /** Reads the log from its latest checkpoint (or version 0) to its latest version; an absent table has version -1. */
  async load(): Promise<DeltaState> {
    const names = await this.store.list(LOG);
    let latest = -1;
    const checkpoints: number[] = [];
    for (const n of names) {
      const m = /^(\d{20})\.json$/.exec(n);
      if (m) latest = Math.max(latest, Number(m[1]));
      const c = /^(\d{20})\.checkpoint\.parquet$/.exec(n);
      if (c) checkpoints.push(Number(c[1]));
    }
    this.state = { version: -1, protocol: null, metadata: null, txns: new Map(), files: new Map() };
    checkpoints.sort((a, b) => b - a);
    let from = 0;
    for (const c of checkpoints) {
      if (c > latest) continue;
      try {
        const bytes = await this.store.get(`${LOG}/${pad(c)}.checkpoint.parquet`);
        if (!bytes) continue;
        await readCheckpoint(bytes, this.state);
        this.state.version = c;
        from = c + 1;
        break;
      } catch {
        // Written by another engine in encodings parquetjs lacks: replay the JSON commits instead.
        this.state = { version: -1, protocol: null, metadata: null, txns: new Map(), files: new Map() };
      }
    }
    for (let v = from; v <= latest; v++) {
      const bytes = await this.store.get(commitName(v));
      if (!bytes) {
        throw new DeltaLogError(
          "LOG_INCOMPLETE",
          `the Delta log at ${this.store.describe}/${LOG} has no ${pad(v)}.json and no checkpoint Runnel can read before it; ` +
            `the log was cleaned up past its last checkpoint. Write to a new 'path', or checkpoint the table with another writer first`,
        );
      }
      this.apply(v, bytes);
    }
    await this.catchUp();
    return this.state;
  }

  /** Applies versions written since (by other subtasks or writers). */
  async catchUp(): Promise<void> {
    for (;;) {
      const v = this.state.version + 1;
      const bytes = await this.store.get(commitName(v));
      if (!bytes) return;
      this.apply(v, bytes);
    }
  }

  private apply(version: number, bytes: Uint8Array): void {
    const s = this.state;
    for (const line of Buffer.from(bytes).toString("utf8").split("\n")) {
      if (!line.trim()) continue;
      const a = JSON.parse(line) as Record<string, any>;
      if (a.protocol) s.protocol = a.protocol;
      else if (a.metaData) s.metadata = a.metaData;
      else if (a.txn) s.txns.set(a.txn.appId, { version: a.txn.version, lastUpdated: a.txn.lastUpdated ?? 0 });
      else if (a.add) s.files.set(a.add.path, a.add);
      else if (a.remove) s.files.delete(a.remove.path);
    }
    s.version = version;
  }

  txnVersion(appId: string): number {
    return this.state.txns.get(appId)?.version ?? -1;
  }

  /**
   * Creates the table (version 0: protocol and metadata) unless it exists; a
   * concurrent creator that wins is fine when its metadata is the same.
   */
  async create(metadata: Omit<MetadataAction, "id" | "createdTime">): Promise<void> {
    if (this.state.version >= 0) return;
    const now = Date.now();
    const md: MetadataAction = { id: randomUUID(), createdTime: now, ...metadata };
    const body = [
      { commitInfo: { timestamp: now, operation: "CREATE TABLE", operationParameters: { mode: "ErrorIfExists" }, engineInfo: "runnel" } },
      { protocol: { minReaderVersion: 1, minWriterVersion: 2 } },
      { metaData: md },
    ];
    await this.store.putIfAbsent(commitName(0), lines(body));
    await this.catchUp();
  }

  /**
   * Commits `adds` as one version with txn (appId, txnVersion), unless the log
   * already holds that transaction. Returns the version written, or null.
   */
  async commit(appId: string, txnVersion: number, adds: AddAction[], operation = "WRITE"): Promise<number | null> {
    for (let attempt = 0; attempt < 1000; attempt++) {
      await this.catchUp();
      if (this.txnVersion(appId) >= txnVersion) return null;
      const now = Date.now();
      const v = this.state.version + 1;
      const body = [
        { commitInfo: { timestamp: now, operation, operationParameters: { mode: "Append" }, engineInfo: "runnel", isBlindAppend: true, txnId: randomUUID() } },
        { txn: { appId, version: txnVersion, lastUpdated: now } },
        ...adds.map((add) => ({ add })),
      ];
      crashPoint("delta-before-log-commit");
      if (!(await this.store.putIfAbsent(commitName(v), lines(body)))) continue; // another writer took v: read it, try v + 1
      this.apply(v, lines(body));
      crashPoint("delta-after-log-commit");
      if (this.checkpointInterval > 0 && v % this.checkpointInterval === 0) await this.checkpoint();
      return v;
    }
    throw new DeltaLogError("COMMIT_CONFLICT", `Delta commit to ${this.store.describe} lost the race for a version 1000 times; too many concurrent writers`);
  }

  /** Writes the checkpoint of the current version and points _last_checkpoint at it. */
  async checkpoint(): Promise<void> {
    const v = this.state.version;
    const { bytes, size } = await writeCheckpoint(this.state);
    await this.store.put(`${LOG}/${pad(v)}.checkpoint.parquet`, bytes);
    crashPoint("delta-after-checkpoint-file");
    await this.store.put(`${LOG}/_last_checkpoint`, Buffer.from(JSON.stringify({ version: v, size })));
  }
}

function lines(actions: object[]): Uint8Array {
  return Buffer.from(actions.map((a) => JSON.stringify(a)).join("\n") + "\n");
}
