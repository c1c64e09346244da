/**
 * Helpers for plugin unit tests: coerce raw SQL option text through a plugin's
 * option schema (as the planner does), build source/sink contexts, drain readers.
 */
import type {
  ConnectorDefinition,
  ConnectorMetrics,
  Deserializer,
  Field,
  OptionsShape,
  Row,
  Serializer,
  SinkContext,
  SourceContext,
  SourceReader,
  SplitBatch,
} from "../../core/plugin-api/index.ts";

/** Applies each option's `parse` to the given raw strings, fills defaults and checks required ones. */
export function coerce(shape: OptionsShape, raw: Record<string, string>): any {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(raw)) {
    const spec = shape[name];
    if (!spec) throw new Error(`unknown option '${name}'; valid: ${Object.keys(shape).join(", ")}`);
    out[name] = spec.parse(value);
  }
  for (const [name, spec] of Object.entries(shape)) {
    if (out[name] !== undefined) continue;
    if (spec.default !== undefined) out[name] = spec.default;
    else if (spec.required) throw new Error(`missing required option '${name}'`);
  }
  return out;
}

export const silentLog = { info() {}, warn() {} };

/** ConnectorMetrics that keep what a connector reported, for tests to read. */
export function recordingMetrics(): ConnectorMetrics & { values: Record<string, number> } {
  const values: Record<string, number> = {};
  return {
    values,
    add(name, n = 1) {
      values[name] = (values[name] ?? 0) + n;
    },
    set(name, value) {
      values[name] = value;
    },
  };
}

export interface BadRecord {
  position: string;
  message: string;
}

export interface SourceSetup {
  options?: Record<string, string>;
  fields?: Field[];
  subtaskIndex?: number;
  parallelism?: number;
  /** The job's start (µs since the epoch): subtasks of one job share it. */
  startTimeMicros?: number;
  restored?: Record<string, unknown>;
  /** The columns the query reads (the planner's projection push-down); undefined: all. */
  columnsRead?: number[];
  /** Rows whose columns here are all null may be left out (a pushed-down IS NOT NULL). */
  notNull?: number[];
  /** Per struct column read only through its fields, those fields (the planner's nested push-down). */
  fieldsRead?: Record<number, string[]>;
  format?: Deserializer;
  /** 'drop' collects bad records in `bad`; 'fail' throws like the engine does. */
  badData?: "drop" | "fail";
}

export function sourceContext(connector: ConnectorDefinition<any>, s: SourceSetup = {}) {
  const options = coerce(connector.options, s.options ?? {});
  const bad: BadRecord[] = [];
  const metrics = recordingMetrics();
  const ctx: SourceContext<any> = {
    options,
    tableName: "t",
    subtaskIndex: s.subtaskIndex ?? 0,
    parallelism: s.parallelism ?? 1,
    startTimeMicros: s.startTimeMicros ?? Date.now() * 1000,
    signal: new AbortController().signal,
    log: silentLog,
    metrics,
    fields: s.fields ?? connector.columns?.(options) ?? [],
    format: s.format,
    restored: s.restored ?? {},
    columnsRead: s.columnsRead,
    notNull: s.notNull,
    fieldsRead: s.fieldsRead,
    badRecord(position, error) {
      const message = error instanceof Error ? error.message : String(error);
      if (s.badData === "fail") throw new Error(`bad record at ${position}: ${message}`);
      bad.push({ position, message });
    },
  };
  return { ctx, bad, metrics: metrics.values };
}

export async function createReader(connector: ConnectorDefinition<any>, s: SourceSetup = {}) {
  const { ctx, bad, metrics } = sourceContext(connector, s);
  const reader = await connector.source!.create(ctx);
  return { reader, ctx, bad, metrics };
}

/** Polls until `end` or until `limit` rows were read; returns rows and native times. */
export async function drain(reader: SourceReader, limit = Infinity, maxRows = 4096) {
  const rows: Row[] = [];
  const times: number[] = [];
  const batches: SplitBatch[] = [];
  let ended = false;
  while (rows.length < limit) {
    const polled = await reader.poll(Math.min(maxRows, limit - rows.length));
    if ("end" in polled) {
      ended = true;
      break;
    }
    for (const b of polled.batches) {
      batches.push(b);
      rows.push(...b.rows);
      if (b.times) times.push(...b.times);
    }
  }
  return { rows, times, batches, ended };
}

export interface SinkSetup {
  options?: Record<string, string>;
  fields: Field[];
  format?: Serializer;
  updating?: boolean;
  restored?: unknown;
  subtaskIndex?: number;
  parallelism?: number;
  /** The job's start (µs since the epoch): subtasks of one job share it. */
  startTimeMicros?: number;
}

export function sinkContext(connector: ConnectorDefinition<any>, s: SinkSetup): SinkContext<any> & { metrics: ReturnType<typeof recordingMetrics> } {
  return {
    options: coerce(connector.options, s.options ?? {}),
    tableName: "t",
    subtaskIndex: s.subtaskIndex ?? 0,
    parallelism: s.parallelism ?? 1,
    startTimeMicros: s.startTimeMicros ?? Date.now() * 1000,
    signal: new AbortController().signal,
    log: silentLog,
    metrics: recordingMetrics(),
    fields: s.fields,
    format: s.format,
    updating: s.updating ?? false,
    restored: s.restored,
  };
}

/** What a decoder gives for a record, its row or its error message, for comparing two decoding paths. */
export function outcome<R>(fn: () => R): { row: R } | { error: string } {
  try {
    return { row: fn() };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** A deterministic generator of numbers in [0, 1) (xorshift), so a failing random case can be reproduced from its seed. */
export function seededRandom(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}
