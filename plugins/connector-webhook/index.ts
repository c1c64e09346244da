/**
 * `webhook`: a sink sending rows to an HTTP endpoint (Arroyo's options:
 * endpoint, headers; the rest are Runnel's). A request carries one row
 * (batch.max_records = 1, as Arroyo) or a batch: a JSON array of rows with
 * format 'json', newline-separated rows with 'raw_string'. Requests that
 * fail in a way worth retrying (network errors, 408, 429, 5xx) are retried
 * with exponential backoff (Retry-After honoured) up to retry.max_attempts;
 * any other answer fails the job, quoting it. Every request has succeeded
 * before a checkpoint completes: at-least-once (a restore sends again what
 * was sent after the checkpoint). Headers may carry `{{ ENV_VAR }}` secrets.
 */
import { defineConnector, definePlugin, opt, type Batch, type SinkContext, type SinkWriter } from "../../core/plugin-api/index.ts";
import { backoffMs, describeError, describeResponse, httpOptions, parseHeaders, retriable, sleep, validateHttpTable } from "../shared/http.ts";

const options = {
  ...httpOptions,
  method: opt.enum(["POST", "PUT", "PATCH"] as const, { default: "POST", description: "The request method" }),
  "batch.max_records": opt.integer({ default: 1, min: 1, description: "Rows per request (1: the row is the body; more: a JSON array with format 'json', lines with 'raw_string')" }),
  "batch.max_bytes": opt.size({ default: 4 * 1024 * 1024, min: 1, description: "A batch is sent once its rows reach this size" }),
  "batch.linger": opt.duration({ default: 100_000, bareUnit: 1000, description: "How long a partial batch waits for more rows (a bare number is milliseconds)" }),
  max_in_flight: opt.integer({ default: 50, min: 1, description: "Requests under way at once, per subtask (1 keeps rows in order)" }),
  "retry.max_attempts": opt.integer({ default: 10, min: 1, description: "Tries of a request before the job fails" }),
  "retry.initial_backoff": opt.duration({ default: 100_000, bareUnit: 1000, description: "Wait before the first retry, doubled each time (a bare number is milliseconds)" }),
  "retry.max_backoff": opt.duration({ default: 10_000_000, bareUnit: 1000, description: "The longest wait between retries" }),
  timeout_ms: opt.integer({ default: 30_000, min: 1, description: "A request taking longer fails (and is retried)" }),
};

interface WebhookOptions {
  endpoint: string;
  headers?: string;
  method: "POST" | "PUT" | "PATCH";
  "batch.max_records": number;
  "batch.max_bytes": number;
  "batch.linger": number;
  max_in_flight: number;
  "retry.max_attempts": number;
  "retry.initial_backoff": number;
  "retry.max_backoff": number;
  timeout_ms: number;
}

const encoder = new TextEncoder();

export class WebhookSinkWriter implements SinkWriter {
  private batch: Uint8Array[] = [];
  private batchBytes = 0;
  private lingerTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private error: Error | null = null;
  private readonly headers: Record<string, string>;
  private readonly join: "single" | "json" | "lines";

  constructor(private readonly ctx: SinkContext<WebhookOptions>) {
    const o = ctx.options;
    const given = parseHeaders(o.headers);
    const hasType = Object.keys(given).some((h) => h.toLowerCase() === "content-type");
    const contentType = ctx.formatName === "json" ? "application/json" : ctx.formatName === "raw_string" ? "text/plain; charset=utf-8" : "application/octet-stream";
    this.headers = hasType ? given : { ...given, "Content-Type": o["batch.max_records"] > 1 && ctx.formatName === "raw_string" ? "text/plain; charset=utf-8" : contentType };
    if (o["batch.max_records"] === 1) this.join = "single";
    else if (ctx.formatName === "json") this.join = "json";
    else if (ctx.formatName === "raw_string") this.join = "lines";
    else throw new Error(`webhook sink '${ctx.tableName}': option 'batch.max_records' > 1 joins rows as a JSON array (format 'json') or lines (format 'raw_string'); format '${ctx.formatName}' cannot be joined, so send one row per request`);
  }

  async write(batch: Batch): Promise<void> {
    if (this.error) throw this.error;
    const o = this.ctx.options;
    const format = this.ctx.format!;
    const { rows, ops, before } = batch;
    for (let i = 0; i < rows.length; i++) {
      const encoded = format.serialize(rows[i]!, ops?.[i], before?.[i]);
      const bytes = typeof encoded === "string" ? encoder.encode(encoded) : encoded;
      this.batch.push(bytes);
      this.batchBytes += bytes.byteLength;
      if (this.batch.length >= o["batch.max_records"] || this.batchBytes >= o["batch.max_bytes"]) await this.dispatch();
    }
    if (this.batch.length > 0 && this.lingerTimer === null) {
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = null;
        void this.dispatch();
      }, o["batch.linger"] / 1000);
    }
  }

  private body(rows: Uint8Array[]): Uint8Array {
    if (this.join === "single") return rows[0]!;
    // Brackets or a final newline, plus one separator per row.
    let size = 2;
    for (const r of rows) size += r.byteLength + 1;
    const out = new Uint8Array(size);
    let at = 0;
    if (this.join === "json") out[at++] = 0x5b; // [
    rows.forEach((r, i) => {
      if (i > 0) out[at++] = this.join === "json" ? 0x2c : 0x0a; // , or \n
      out.set(r, at);
      at += r.byteLength;
    });
    if (this.join === "json") out[at++] = 0x5d; // ]
    else out[at++] = 0x0a;
    return out.subarray(0, at);
  }

  /** Sends the pending rows, waiting for a free slot first (backpressure). */
  private async dispatch(): Promise<void> {
    if (this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    if (this.batch.length === 0) return;
    const rows = this.batch;
    this.batch = [];
    this.batchBytes = 0;
    while (this.inFlight.size >= this.ctx.options.max_in_flight) await Promise.race(this.inFlight);
    const p = this.send(this.body(rows), rows.length).catch((err: Error) => {
      this.error ??= err;
    });
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async send(body: Uint8Array, rows: number): Promise<void> {
    const o = this.ctx.options;
    const ctx = this.ctx;
    let last = "";
    for (let attempt = 0; attempt < o["retry.max_attempts"]; attempt++) {
      if (this.error) return;
      let retryAfter: string | null = null;
      try {
        const res = await fetch(o.endpoint, {
          method: o.method,
          headers: this.headers,
          body: body as Uint8Array<ArrayBuffer>,
          signal: AbortSignal.timeout(o.timeout_ms),
        });
        ctx.metrics.add("requests_total");
        if (res.ok) {
          await res.arrayBuffer().catch(() => {});
          ctx.metrics.add("messages_sent_total", rows);
          ctx.metrics.add("bytes_sent_total", body.byteLength);
          return;
        }
        last = await describeResponse(res);
        if (!retriable(res.status)) {
          ctx.metrics.add("errors_total");
          throw Object.assign(new Error(`webhook sink '${ctx.tableName}': ${o.method} ${o.endpoint} (option 'endpoint') answered ${last}`), { fatal: true });
        }
        retryAfter = res.headers.get("retry-after");
      } catch (err) {
        if ((err as { fatal?: boolean }).fatal) throw err;
        last = describeError(err);
      }
      ctx.metrics.add("errors_total");
      if (attempt + 1 < o["retry.max_attempts"]) {
        ctx.metrics.add("retries_total");
        await sleep(backoffMs(attempt, o["retry.initial_backoff"] / 1000, o["retry.max_backoff"] / 1000, retryAfter), ctx.signal);
      }
    }
    throw new Error(`webhook sink '${ctx.tableName}': ${o.method} ${o.endpoint} failed ${o["retry.max_attempts"]} times (option 'retry.max_attempts'); last: ${last}`);
  }

  /** At the barrier: the partial batch sent, every request done. */
  async prepareCommit(): Promise<null> {
    await this.dispatch();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    if (this.error) throw this.error;
    return null;
  }

  async close(): Promise<void> {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    await Promise.allSettled([...this.inFlight]);
  }
}

export const webhook = defineConnector({
  name: "webhook",
  description: "Sends rows to an HTTP endpoint, batched, with retries and backoff (at-least-once)",
  options,
  needsFormat: true,
  validate: (info) => validateHttpTable(info, "webhook", "sink", ["http:", "https:"]),
  sink: {
    create(ctx) {
      if (!ctx.format) throw new Error(`webhook sink '${ctx.tableName}' needs a format (e.g. format = 'json')`);
      return new WebhookSinkWriter(ctx as SinkContext<WebhookOptions>);
    },
  },
});

export default definePlugin({ name: "connector-webhook", version: "0.1.0", connectors: [webhook] });
