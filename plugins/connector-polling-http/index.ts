/**
 * `polling_http`: requests an endpoint every `poll_interval_ms` and emits the
 * response body as one record in the table's format (Arroyo's options:
 * endpoint, headers, method, body, poll_interval_ms, emit_behavior). With
 * emit_behavior = 'changed' a response equal to the last one emitted is
 * skipped; the last one's hash is checkpointed, so a restart does not emit
 * an unchanged response again. One poller, on subtask 0. What the endpoint
 * showed between two polls, or while the job was down, is not seen
 * (at-most-once per change). Event time is the time of the response.
 */
import { createHash } from "node:crypto";
import { defineConnector, definePlugin, opt, t, type SourceContext, type SourcePoll, type SourceReader, type TableInfo } from "../../core/plugin-api/index.ts";
import { decodeMessages, idleReader } from "../shared/decode.ts";
import { describeError, Outage, describeResponse, httpOptions, parseHeaders, retriable, sleep, validateHttpTable } from "../shared/http.ts";

const options = {
  ...httpOptions,
  method: opt.enum(["GET", "POST", "PUT", "PATCH"] as const, { default: "GET", description: "The request method" }),
  body: opt.string({ description: "A body sent with each request" }),
  poll_interval_ms: opt.integer({ default: 1000, min: 1, description: "Milliseconds between the end of one successful poll and the next request" }),
  emit_behavior: opt.enum(["all", "changed"] as const, { default: "all", description: "Emit every response, or only one that differs from the last emitted" }),
  timeout_ms: opt.integer({ default: 30_000, min: 1, description: "A request taking longer fails (and is retried)" }),
};

interface PollingOptions {
  endpoint: string;
  headers?: string;
  method: "GET" | "POST" | "PUT" | "PATCH";
  body?: string;
  poll_interval_ms: number;
  emit_behavior: "all" | "changed";
  timeout_ms: number;
}

/** Responses larger than this are refused (Arroyo's limit too). */
const MAX_BODY_BYTES = 5 * 1024 * 1024;
const SPLIT = "polling_http";

interface Response1 {
  body: Uint8Array;
  status: number;
  time: number;
  hash: string;
}

export class PollingHttpReader implements SourceReader {
  /** Hash of the last response taken into state. */
  private lastHash: string | null;
  private nextAt = 0;
  private readonly outage: Outage;
  private readonly headers: Record<string, string>;

  constructor(private readonly ctx: SourceContext<PollingOptions>) {
    const restored = ctx.restored[SPLIT];
    this.lastHash = typeof restored === "string" ? restored : null;
    this.headers = parseHeaders(ctx.options.headers);
    this.outage = new Outage(ctx, `polling_http source '${ctx.tableName}': '${ctx.options.endpoint}' (option 'endpoint')`);
  }

  splits(): string[] {
    return [SPLIT];
  }

  async poll(): Promise<SourcePoll> {
    const wait = this.nextAt - Date.now();
    // Short waits keep the engine responsive to checkpoints between polls.
    if (wait > 0) {
      await sleep(Math.min(wait, 100), this.ctx.signal);
      return { batches: [] };
    }
    const o = this.ctx.options;
    const res = await this.request();
    if (res === null) return { batches: [] };
    this.nextAt = Date.now() + o.poll_interval_ms;
    if (o.emit_behavior === "changed" && res.hash === this.lastHash) {
      this.ctx.metrics.add("unchanged_total");
      return { batches: [] };
    }
    this.lastHash = res.hash;
    const { rows, times } = await decodeMessages(this.ctx, [res], {
      data: (m) => m.body,
      time: (m) => m.time,
      where: () => `the response of ${o.method} ${o.endpoint}`,
      metadata: (m, key) => (key === "status" ? m.status : null),
    });
    return { batches: rows.length > 0 ? [{ split: SPLIT, rows, times }] : [] };
  }

  /** One request; null when it failed in a way worth retrying (the next poll retries after a backoff). */
  private async request(): Promise<Response1 | null> {
    const o = this.ctx.options;
    const ctx = this.ctx;
    let failure: string;
    try {
      const res = await fetch(o.endpoint, {
        method: o.method,
        headers: this.headers,
        body: o.body,
        signal: AbortSignal.any([ctx.signal, AbortSignal.timeout(o.timeout_ms)]),
      });
      ctx.metrics.add("requests_total");
      if (res.ok) {
        const body = new Uint8Array(await res.arrayBuffer());
        if (body.byteLength > MAX_BODY_BYTES) throw Object.assign(new Error(`polling_http source '${ctx.tableName}': the response of '${o.endpoint}' is ${body.byteLength} bytes, over the ${MAX_BODY_BYTES} byte limit`), { fatal: true });
        ctx.metrics.add("bytes_received_total", body.byteLength);
        this.outage.ok();
        return { body, status: res.status, time: Date.now() * 1000, hash: createHash("sha256").update(body).digest("base64") };
      }
      const answer = await describeResponse(res);
      if (!retriable(res.status)) throw Object.assign(new Error(`polling_http source '${ctx.tableName}': '${o.endpoint}' (option 'endpoint') answered ${answer}`), { fatal: true });
      failure = answer;
    } catch (err) {
      if ((err as { fatal?: boolean }).fatal) throw err;
      if (ctx.signal.aborted) return null;
      failure = describeError(err);
    }
    this.nextAt = Date.now() + this.outage.failed(failure, Math.min(o.poll_interval_ms, 1000), 30_000);
    return null;
  }

  snapshot(): Record<string, unknown> {
    return this.lastHash === null ? {} : { [SPLIT]: this.lastHash };
  }
}

export const pollingHttp = defineConnector({
  name: "polling_http",
  description: "Polls an HTTP endpoint, emitting every response or only changed ones",
  options,
  needsFormat: true,
  validate(info: TableInfo<unknown>) {
    validateHttpTable(info, "polling_http", "source", ["http:", "https:"]);
    const table = info as TableInfo<PollingOptions>;
    if (table.options.body !== undefined && table.options.method === "GET") throw new Error("option 'body' needs method = 'POST', 'PUT' or 'PATCH' (a GET has no body)");
  },
  metadata: { status: { type: t.int(), description: "The response's HTTP status" } },
  source: {
    create(ctx) {
      if (!ctx.format) throw new Error(`polling_http source '${ctx.tableName}' needs a format (e.g. format = 'json')`);
      // One poller: subtasks other than 0 read nothing.
      return ctx.subtaskIndex === 0 ? new PollingHttpReader(ctx as SourceContext<PollingOptions>) : idleReader();
    },
  },
});

export default definePlugin({ name: "connector-polling-http", version: "0.1.0", connectors: [pollingHttp] });
