/**
 * The Confluent schema registry, as the avro, protobuf and json formats use it:
 * the options they share, a small REST client (schemas by id, subjects'
 * versions, registering and looking up) and the wire format (magic byte 0,
 * a 4-byte big-endian schema id, then the encoded value).
 *
 * Any registry with the Confluent REST API works: Confluent's, Karapace,
 * Redpanda's, Apicurio's `/apis/ccompat/v7`.
 */
import { opt, type FormatTable } from "../../core/plugin-api/index.ts";

/** Options every registry-aware format declares (Arroyo's names; they may also come from a connection profile). */
export const schemaRegistryOptions = {
  confluent_schema_registry: opt.boolean({
    default: false,
    description: "Records carry the Confluent schema registry wire format: magic byte 0, the 4-byte schema id, then the value",
  }),
  "schema_registry.endpoint": opt.string({ description: "URL of a registry with the Confluent REST API (e.g. http://registry:8081, or Apicurio's .../apis/ccompat/v7)" }),
  "schema_registry.api_key": opt.string({ description: "User name or API key for HTTP basic auth to the registry" }),
  "schema_registry.api_secret": opt.string({ secret: true, description: "Password or API secret for HTTP basic auth to the registry" }),
  "schema_registry.auto_register": opt.boolean({
    default: true,
    description: "Sinks register their schema under the subject (the registry answers the existing id when it is there); false: only look it up",
  }),
  "value.subject": opt.string({ description: "Subject of the value schema written by a sink; default '<topic>-value' (topic naming strategy)" }),
};

export interface SchemaRegistryOptionValues {
  confluent_schema_registry?: boolean;
  "schema_registry.endpoint"?: string;
  "schema_registry.api_key"?: string;
  "schema_registry.api_secret"?: string;
  "schema_registry.auto_register"?: boolean;
  "value.subject"?: string;
}

/** Planning-time checks of the registry options; `format` names the format in messages. */
export function validateRegistryOptions(o: SchemaRegistryOptionValues, table: FormatTable, format: string): void {
  if (!o.confluent_schema_registry) return;
  if (!o["schema_registry.endpoint"]) {
    throw new Error(`format '${format}' with confluent_schema_registry = true needs option 'schema_registry.endpoint' (the registry's URL)`);
  }
  try {
    new URL(o["schema_registry.endpoint"]);
  } catch {
    throw new Error(`option 'schema_registry.endpoint': '${o["schema_registry.endpoint"]}' is not a URL; write it like 'http://registry:8081'`);
  }
  if (!!o["schema_registry.api_key"] !== !!o["schema_registry.api_secret"]) {
    throw new Error("options 'schema_registry.api_key' and 'schema_registry.api_secret' go together; give both for basic auth, or neither");
  }
  if (table.role === "sink") valueSubject(o, table, format);
}

/** The subject a sink's value schema lives under: `value.subject`, else `<topic>-value` (Confluent's TopicNameStrategy). */
export function valueSubject(o: SchemaRegistryOptionValues, table: FormatTable | undefined, format: string): string {
  if (o["value.subject"]) return o["value.subject"];
  const topic = table?.connectorOptions.topic;
  if (typeof topic === "string" && topic !== "") return `${topic}-value`;
  throw new Error(
    `format '${format}' with confluent_schema_registry needs option 'value.subject' here: connector '${table?.connector ?? "?"}' has no topic to name the subject after ('<topic>-value')`,
  );
}

// ------------------------------------------------------------------ wire format

export const MAGIC_BYTE = 0;

/** The schema id of a record in the wire format; throws saying what the record looks like instead. */
export function wireSchemaId(data: Uint8Array): number {
  if (data.length < 5) throw new Error(`a record of ${data.length} bytes is too short for the schema registry wire format (magic byte and 4-byte schema id)`);
  if (data[0] !== MAGIC_BYTE) {
    throw new Error(
      `the record does not start with the schema registry magic byte 0 (it starts with ${data[0]}); ` +
        `it was not written with a schema registry: drop confluent_schema_registry, or fix the producer`,
    );
  }
  return ((data[1]! << 24) | (data[2]! << 16) | (data[3]! << 8) | data[4]!) >>> 0;
}

/** The 5-byte header of the wire format for a schema id. */
export function wireHeader(id: number): Uint8Array {
  return Uint8Array.of(MAGIC_BYTE, (id >>> 24) & 255, (id >>> 16) & 255, (id >>> 8) & 255, id & 255);
}

const encoder = new TextEncoder();

/** Record bytes as formats receive them: sources that read text (single_file) hand strings. */
export function recordBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === "string" ? encoder.encode(data) : data;
}

// ------------------------------------------------------------------ REST client

export type SchemaType = "AVRO" | "PROTOBUF" | "JSON";

export interface SchemaReference {
  name: string;
  subject: string;
  version: number;
}

export interface RegisteredSchema {
  schema: string;
  /** AVRO when the registry leaves it out (the API's default). */
  schemaType: SchemaType;
  references: SchemaReference[];
}

/** Network failures and 5xx answers are retried this long before the registry counts as unreachable. */
const UNREACHABLE_LIMIT_MS = 60_000;

export class SchemaRegistryError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/**
 * A client for one registry. Schemas by id never change, so they are kept for
 * the life of the process and shared by every subtask and table using the same
 * registry (see `schemaRegistryClient`).
 */
export class SchemaRegistryClient {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly byId = new Map<number, Promise<RegisteredSchema | null>>();

  constructor(
    endpoint: string,
    auth?: { user: string; password: string },
    private readonly retryForMs = UNREACHABLE_LIMIT_MS,
  ) {
    this.base = endpoint.replace(/\/+$/, "");
    this.headers = { accept: "application/vnd.schemaregistry.v1+json, application/json", "content-type": "application/vnd.schemaregistry.v1+json" };
    if (auth) this.headers.authorization = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString("base64")}`;
  }

  /** The schema with this id, or null when the registry has none (a record naming it is bad). */
  schemaById(id: number): Promise<RegisteredSchema | null> {
    let found = this.byId.get(id);
    if (!found) {
      found = this.request("GET", `/schemas/ids/${id}`).then((body) => (body === null ? null : asRegistered(body)));
      // A failure (registry unreachable) is not kept: the next record asks again.
      found.catch(() => this.byId.delete(id));
      this.byId.set(id, found);
    }
    return found;
  }

  /** A version of a subject (a protobuf schema's reference), or null when there is none. */
  async subjectVersion(subject: string, version: number | "latest"): Promise<(RegisteredSchema & { id: number; version: number }) | null> {
    const body = (await this.request("GET", `/subjects/${encodeURIComponent(subject)}/versions/${version}`)) as Record<string, unknown> | null;
    if (body === null) return null;
    return { ...asRegistered(body), id: Number(body.id), version: Number(body.version) };
  }

  /** Registers a schema under a subject and returns its id (the existing one when the same schema is there already). */
  async register(subject: string, schema: RegisteredSchema): Promise<number> {
    const body = (await this.request("POST", `/subjects/${encodeURIComponent(subject)}/versions`, payload(schema))) as { id?: number } | null;
    if (body === null || typeof body.id !== "number") throw new Error(`the registry did not answer an id when registering under subject '${subject}'`);
    return body.id;
  }

  /** The id of a schema already registered under a subject, or null when it is not there. */
  async lookup(subject: string, schema: RegisteredSchema): Promise<number | null> {
    const body = (await this.request("POST", `/subjects/${encodeURIComponent(subject)}`, payload(schema))) as { id?: number } | null;
    return body === null || typeof body.id !== "number" ? null : body.id;
  }

  /** One call, retried while the registry is unreachable or answers 5xx; 404 gives null. */
  private async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const url = this.base + path;
    const started = Date.now();
    let delay = 100;
    for (;;) {
      let problem: string;
      try {
        const res = await fetch(url, { method, headers: this.headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
        const text = await res.text();
        if (res.ok) return text === "" ? null : JSON.parse(text);
        const answer = describeAnswer(res.status, text);
        if (res.status === 404) return null;
        if (res.status === 401 || res.status === 403) {
          throw new SchemaRegistryError(
            `schema registry at '${this.base}' refused ${method} ${path} (${answer}); check options 'schema_registry.api_key' and 'schema_registry.api_secret'`,
            res.status,
          );
        }
        if (res.status < 500) throw new SchemaRegistryError(`schema registry at '${this.base}' refused ${method} ${path}: ${answer}`, res.status);
        problem = answer;
      } catch (err) {
        if (err instanceof SchemaRegistryError) throw err;
        problem = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() - started > this.retryForMs) {
        throw new Error(
          `schema registry at '${this.base}' (option 'schema_registry.endpoint') did not answer ${method} ${path} for ${Math.round(this.retryForMs / 1000)} s: ${problem}; ` +
            `the job can be restarted from its last checkpoint once it is back`,
        );
      }
      await Bun.sleep(delay);
      delay = Math.min(delay * 2, 2000);
    }
  }
}

function payload(s: RegisteredSchema): Record<string, unknown> {
  const out: Record<string, unknown> = { schema: s.schema };
  if (s.schemaType !== "AVRO") out.schemaType = s.schemaType;
  if (s.references.length > 0) out.references = s.references;
  return out;
}

function asRegistered(body: unknown): RegisteredSchema {
  const b = body as { schema?: unknown; schemaType?: unknown; references?: unknown };
  if (typeof b.schema !== "string") throw new Error("the schema registry answered without a schema");
  const type = typeof b.schemaType === "string" ? b.schemaType.toUpperCase() : "AVRO";
  return {
    schema: b.schema,
    schemaType: (type === "PROTOBUF" || type === "JSON" ? type : "AVRO") as SchemaType,
    references: Array.isArray(b.references) ? (b.references as SchemaReference[]) : [],
  };
}

function describeAnswer(status: number, text: string): string {
  try {
    const body = JSON.parse(text) as { message?: string; error_code?: number };
    if (body.message) return `HTTP ${status}${body.error_code ? ` (error ${body.error_code})` : ""}: ${body.message}`;
  } catch {
    // not JSON: show the start of the text
  }
  return `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ""}`;
}

/** The id a sink writes: its schema registered (or, with auto_register = false, looked up) under its subject. */
export async function sinkSchemaId(o: SchemaRegistryOptionValues, table: FormatTable | undefined, format: string, schema: RegisteredSchema): Promise<number> {
  const client = schemaRegistryClient(o);
  const subject = valueSubject(o, table, format);
  const id = o["schema_registry.auto_register"] === false ? await client.lookup(subject, schema) : await client.register(subject, schema);
  if (id === null) {
    throw new Error(`format '${format}': the sink's schema is not registered under subject '${subject}' (schema_registry.auto_register = false); register it, or let the sink register it`);
  }
  return id;
}

const clients = new Map<string, SchemaRegistryClient>();

/** The process-wide client for a table's registry options (one per endpoint and credentials). */
export function schemaRegistryClient(o: SchemaRegistryOptionValues): SchemaRegistryClient {
  const endpoint = o["schema_registry.endpoint"];
  if (!endpoint) throw new Error("option 'schema_registry.endpoint' is needed with confluent_schema_registry = true");
  const user = o["schema_registry.api_key"];
  const password = o["schema_registry.api_secret"];
  const key = `${endpoint}\n${user ?? ""}\n${password ?? ""}`;
  let client = clients.get(key);
  if (!client) {
    client = new SchemaRegistryClient(endpoint, user && password ? { user, password } : undefined);
    clients.set(key, client);
  }
  return client;
}

/**
 * Per-format decoders by schema id, filled by `prepare` (async) and read by
 * `deserialize` (sync). A schema that cannot be used (unknown id, not the
 * format's type, not matching the columns) is kept as its error, so each record
 * naming it is reported as bad without asking the registry again.
 */
export class SchemaIdCache<D> {
  private readonly ready = new Map<number, D | Error>();
  private readonly pending = new Map<number, Promise<void>>();

  constructor(
    private readonly client: SchemaRegistryClient,
    private readonly build: (id: number, schema: RegisteredSchema, client: SchemaRegistryClient) => Promise<D> | D,
  ) {}

  /** undefined when the id is known (the common case); else a promise that settles once it is. */
  prepare(data: Uint8Array | string): Promise<void> | undefined {
    const bytes = recordBytes(data);
    if (bytes.length < 5 || bytes[0] !== MAGIC_BYTE) return undefined; // deserialize reports it
    const id = wireSchemaId(bytes);
    if (this.ready.has(id)) return undefined;
    let p = this.pending.get(id);
    if (!p) {
      p = this.load(id).finally(() => this.pending.delete(id));
      this.pending.set(id, p);
    }
    return p;
  }

  private async load(id: number): Promise<void> {
    const schema = await this.client.schemaById(id); // throws when the registry is unreachable: the job fails
    if (schema === null) {
      this.ready.set(id, new Error(`schema id ${id} is not in the schema registry`));
      return;
    }
    try {
      this.ready.set(id, await this.build(id, schema, this.client));
    } catch (err) {
      if (err instanceof SchemaRegistryError) throw err;
      this.ready.set(id, new Error(`schema id ${id}: ${err instanceof Error ? err.message : String(err)}`));
    }
  }

  /** The decoder for a record's schema id; throws (a bad record) when it has none. */
  get(id: number): D {
    const d = this.ready.get(id);
    if (d === undefined) throw new Error(`schema id ${id} was not fetched from the registry before the record was read (the source did not call the format's prepare)`);
    if (d instanceof Error) throw d;
    return d;
  }
}
