/**
 * Where an Iceberg table's current metadata is kept, and how a new snapshot
 * becomes current atomically: a REST catalog (the commit carries
 * requirements; a stale writer gets 409 and retries on the new metadata), or
 * a file catalog for local use (metadata/v<N>.metadata.json created only if
 * absent, plus version-hint.text for readers that look there, as Iceberg's
 * Hadoop tables do).
 */
import { randomUUID } from "node:crypto";
import type { TableStore } from "../shared/lakehouse/store.ts";

export interface Snapshot {
  "snapshot-id": number;
  "parent-snapshot-id"?: number;
  "sequence-number": number;
  "timestamp-ms": number;
  "manifest-list": string;
  summary: Record<string, string>;
  "schema-id": number;
}

/** Table metadata as the spec lays it out (the fields this writer reads; the rest is kept as is). */
export interface TableMetadata {
  "format-version": number;
  "table-uuid": string;
  location: string;
  "last-sequence-number"?: number;
  "last-updated-ms": number;
  "last-column-id": number;
  "current-schema-id": number;
  schemas: { "schema-id": number; type: "struct"; fields: { id: number; name: string; required: boolean; type: unknown }[] }[];
  "default-spec-id": number;
  "partition-specs": { "spec-id": number; fields: { "source-id": number; "field-id": number; name: string; transform: string }[] }[];
  "last-partition-id": number;
  properties?: Record<string, string>;
  "current-snapshot-id"?: number | null;
  snapshots?: Snapshot[];
  "snapshot-log"?: { "snapshot-id": number; "timestamp-ms": number }[];
  "metadata-log"?: { "metadata-file": string; "timestamp-ms": number }[];
  "sort-orders": unknown[];
  "default-sort-order-id": number;
  refs?: Record<string, { "snapshot-id": number; type: string }>;
  [k: string]: unknown;
}

export interface CreateRequest {
  location: string;
  schema: TableMetadata["schemas"][number];
  spec: TableMetadata["partition-specs"][number];
  properties: Record<string, string>;
}

export interface IcebergCatalog {
  readonly describe: string;
  load(): Promise<TableMetadata | null>;
  /** Creates the table unless it exists (then returns the existing one). */
  create(req: CreateRequest): Promise<TableMetadata>;
  /** Makes `snapshot` current if `base` is still current; null when another writer committed first. */
  commit(base: TableMetadata, snapshot: Snapshot): Promise<TableMetadata | null>;
}

export class IcebergCatalogError extends Error {
  constructor(
    readonly code: "CATALOG_UNREACHABLE" | "CATALOG_REQUEST" | "TABLE_FORMAT",
    message: string,
  ) {
    super(message);
    this.name = "IcebergCatalogError";
  }
}

/** The metadata with `snapshot` added and made the current one of branch main. */
export function withSnapshot(base: TableMetadata, snapshot: Snapshot): TableMetadata {
  const now = snapshot["timestamp-ms"];
  return {
    ...base,
    "last-sequence-number": snapshot["sequence-number"],
    "last-updated-ms": now,
    "current-snapshot-id": snapshot["snapshot-id"],
    snapshots: [...(base.snapshots ?? []), snapshot],
    "snapshot-log": [...(base["snapshot-log"] ?? []), { "snapshot-id": snapshot["snapshot-id"], "timestamp-ms": now }],
    refs: { ...(base.refs ?? {}), main: { "snapshot-id": snapshot["snapshot-id"], type: "branch" } },
  };
}

// ------------------------------------------------------------------ file catalog

const VERSION = /^v(\d+)\.metadata\.json$/;

export class FileCatalog implements IcebergCatalog {
  private version = 0;
  constructor(
    private readonly store: TableStore,
    /** The table's location as a URI (what data and metadata paths start with). */
    private readonly location: string,
  ) {}

  get describe(): string {
    return `at ${this.location}`;
  }

  private file = (v: number) => `metadata/v${v}.metadata.json`;

  async load(): Promise<TableMetadata | null> {
    let latest = 0;
    for (const n of await this.store.list("metadata")) {
      const m = VERSION.exec(n);
      if (m) latest = Math.max(latest, Number(m[1]));
    }
    // Versions written since the listing (list-after-write is only eventually complete on some stores).
    while (await this.store.get(this.file(latest + 1))) latest++;
    if (latest === 0) return null;
    this.version = latest;
    return JSON.parse(Buffer.from((await this.store.get(this.file(latest)))!).toString("utf8"));
  }

  private async put(meta: TableMetadata, previous: TableMetadata | null): Promise<boolean> {
    const v = this.version + 1;
    const body: TableMetadata = previous
      ? { ...meta, "metadata-log": [...(previous["metadata-log"] ?? []), { "metadata-file": `${this.location}/${this.file(this.version)}`, "timestamp-ms": previous["last-updated-ms"] }] }
      : meta;
    if (!(await this.store.putIfAbsent(this.file(v), Buffer.from(JSON.stringify(body, null, 1))))) return false;
    this.version = v;
    await this.store.put("metadata/version-hint.text", Buffer.from(String(v)));
    return true;
  }

  async create(req: CreateRequest): Promise<TableMetadata> {
    const existing = await this.load();
    if (existing) return existing;
    const meta: TableMetadata = {
      "format-version": 2,
      "table-uuid": randomUUID(),
      location: this.location,
      "last-sequence-number": 0,
      "last-updated-ms": Date.now(),
      "last-column-id": Math.max(0, ...req.schema.fields.map((f) => f.id)),
      "current-schema-id": req.schema["schema-id"],
      schemas: [req.schema],
      "default-spec-id": req.spec["spec-id"],
      "partition-specs": [req.spec],
      "last-partition-id": Math.max(999, ...req.spec.fields.map((f) => f["field-id"])),
      properties: req.properties,
      "current-snapshot-id": -1,
      snapshots: [],
      "snapshot-log": [],
      "metadata-log": [],
      "sort-orders": [{ "order-id": 0, fields: [] }],
      "default-sort-order-id": 0,
      refs: {},
    };
    if (await this.put(meta, null)) return meta;
    return (await this.load())!; // a concurrent creator won
  }

  async commit(base: TableMetadata, snapshot: Snapshot): Promise<TableMetadata | null> {
    const next = withSnapshot(base, snapshot);
    return (await this.put(next, base)) ? next : null;
  }
}

// ------------------------------------------------------------------ REST catalog

export class RestCatalog implements IcebergCatalog {
  private prefix: string | null = null;
  constructor(
    private readonly uri: string,
    private readonly namespace: string,
    private readonly name: string,
    private readonly token?: string,
  ) {}

  get describe(): string {
    return `${this.namespace}.${this.name} in the REST catalog at ${this.uri}`;
  }

  private async request(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    let res: Response;
    try {
      res = await fetch(`${this.uri.replace(/\/+$/, "")}${path}`, {
        method,
        headers: { "Content-Type": "application/json", ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new IcebergCatalogError("CATALOG_UNREACHABLE", `cannot reach the Iceberg REST catalog at ${this.uri} (option 'iceberg.catalog.uri'): ${(err as Error).message}`);
    }
    const text = await res.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = { error: { message: text } };
    }
    return { status: res.status, json };
  }

  private fail(what: string, r: { status: number; json: any }): never {
    const hint = r.status === 401 || r.status === 403 ? "; check option 'iceberg.catalog.token'" : "";
    throw new IcebergCatalogError("CATALOG_REQUEST", `Iceberg REST catalog at ${this.uri}: ${what} failed with ${r.status}: ${r.json?.error?.message ?? JSON.stringify(r.json)}${hint}`);
  }

  private async base(): Promise<string> {
    if (this.prefix === null) {
      const r = await this.request("GET", "/v1/config");
      if (r.status !== 200) this.fail("GET /v1/config", r);
      const p = r.json?.overrides?.prefix ?? r.json?.defaults?.prefix;
      this.prefix = p ? `/v1/${encodeURIComponent(p)}` : "/v1";
    }
    return this.prefix;
  }

  private async tablePath(): Promise<string> {
    return `${await this.base()}/namespaces/${encodeURIComponent(this.namespace)}/tables/${encodeURIComponent(this.name)}`;
  }

  async load(): Promise<TableMetadata | null> {
    const r = await this.request("GET", await this.tablePath());
    if (r.status === 404) return null;
    if (r.status !== 200) this.fail(`loading ${this.namespace}.${this.name}`, r);
    return r.json.metadata;
  }

  async create(req: CreateRequest): Promise<TableMetadata> {
    const base = await this.base();
    const ns = await this.request("POST", `${base}/namespaces`, { namespace: [this.namespace], properties: {} });
    if (ns.status !== 200 && ns.status !== 409) this.fail(`creating namespace ${this.namespace}`, ns);
    const r = await this.request("POST", `${base}/namespaces/${encodeURIComponent(this.namespace)}/tables`, {
      name: this.name,
      location: req.location,
      schema: req.schema,
      "partition-spec": req.spec,
      properties: req.properties,
      "stage-create": false,
    });
    if (r.status === 200) return r.json.metadata;
    if (r.status === 409) return (await this.load())!;
    this.fail(`creating table ${this.namespace}.${this.name}`, r);
  }

  async commit(base: TableMetadata, snapshot: Snapshot): Promise<TableMetadata | null> {
    const current = base["current-snapshot-id"];
    const r = await this.request("POST", await this.tablePath(), {
      identifier: { namespace: [this.namespace], name: this.name },
      requirements: [
        { type: "assert-table-uuid", uuid: base["table-uuid"] },
        { type: "assert-ref-snapshot-id", ref: "main", "snapshot-id": current === undefined || current === null || current < 0 ? null : current },
      ],
      updates: [
        { action: "add-snapshot", snapshot },
        { action: "set-snapshot-ref", "ref-name": "main", type: "branch", "snapshot-id": snapshot["snapshot-id"] },
      ],
    });
    if (r.status === 409) return null;
    if (r.status !== 200) this.fail(`committing a snapshot to ${this.namespace}.${this.name}`, r);
    return r.json.metadata;
  }
}
