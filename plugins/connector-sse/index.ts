/**
 * `sse`: Server-Sent Events (Arroyo's options: endpoint, headers, events).
 * One connection, on subtask 0. Each event's data is one record in the
 * table's format. The last event id taken into state is checkpointed and sent
 * as Last-Event-ID when the job restarts (and on every reconnect), so a server
 * that resumes after that id gives exactly-once; one that ignores it gives
 * at-most-once (events sent while the job is down are lost). Event time is
 * the arrival time.
 */
import type { createParser as CreateParser, EventSourceMessage } from "eventsource-parser";
import { defineConnector, definePlugin, opt, t, type SourceContext, type SourcePoll, type SourceReader } from "../../core/plugin-api/index.ts";
import { decodeMessages, idleReader } from "../shared/decode.ts";
import { describeError, Outage, describeResponse, httpOptions, parseHeaders, retriable, sleep, validateHttpTable } from "../shared/http.ts";
import { Inbox } from "../shared/inbox.ts";
import { importFor, requirePackages } from "../shared/lazy.ts";

requirePackages("connector-sse", import.meta.url, ["eventsource-parser"]);

const options = {
  ...httpOptions,
  events: opt.string({ description: "Comma-separated event types to keep (default: all, including unnamed 'message' events)" }),
};

interface SseOptions {
  endpoint: string;
  headers?: string;
  events?: string;
}

interface Received {
  data: string;
  id?: string;
  event: string;
  time: number;
}

export class SseSourceReader implements SourceReader {
  private readonly inbox = new Inbox<Received>(100_000);
  /** The id of the last event received (for reconnects) and of the last one taken into state (checkpointed). */
  private lastReceivedId: string | undefined;
  private lastTakenId: string | undefined;
  private readonly abort = new AbortController();
  private readonly split = "sse";
  private readonly events: Set<string> | null;
  private readonly headers: Record<string, string>;
  private retryMs = 1_000;

  constructor(
    private readonly ctx: SourceContext<SseOptions>,
    private readonly createParser: typeof CreateParser,
  ) {
    const restored = ctx.restored[this.split];
    if (typeof restored === "string") this.lastReceivedId = this.lastTakenId = restored;
    const events = ctx.options.events?.split(",").map((e) => e.trim()).filter(Boolean);
    this.events = events && events.length > 0 ? new Set(events) : null;
    this.headers = parseHeaders(ctx.options.headers);
    ctx.signal.addEventListener("abort", () => this.abort.abort());
    void this.run();
  }

  /** Connects, reads, and reconnects (with Last-Event-ID) until the job stops; fails the job on a refusal or a long outage. */
  private async run(): Promise<void> {
    const ctx = this.ctx;
    const url = ctx.options.endpoint;
    const outage = new Outage(ctx, `sse source '${ctx.tableName}': '${url}' (option 'endpoint')`);
    while (!this.abort.signal.aborted) {
      try {
        const res = await fetch(url, {
          headers: { Accept: "text/event-stream", ...this.headers, ...(this.lastReceivedId !== undefined ? { "Last-Event-ID": this.lastReceivedId } : {}) },
          signal: this.abort.signal,
        });
        if (!res.ok) {
          const answer = await describeResponse(res);
          if (!retriable(res.status)) throw Object.assign(new Error(`sse source '${ctx.tableName}': '${url}' (option 'endpoint') answered ${answer}`), { fatal: true });
          throw new Error(answer);
        }
        if (!res.body) throw new Error("the response has no body");
        outage.ok();
        const parser = this.createParser({
          onEvent: (e) => this.onEvent(e),
          onRetry: (ms) => (this.retryMs = ms),
        });
        const decoder = new TextDecoder();
        const body = res.body.getReader();
        for (;;) {
          const { done, value } = await body.read();
          if (done) break;
          ctx.metrics.add("bytes_received_total", value.byteLength);
          parser.feed(decoder.decode(value, { stream: true }));
        }
        // The server ended the stream: reconnect after its retry delay.
        ctx.metrics.add("reconnects_total");
        await sleep(this.retryMs, this.abort.signal);
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if ((err as { fatal?: boolean }).fatal) return this.inbox.fail(err as Error);
        try {
          await sleep(outage.failed(describeError(err), this.retryMs, 10_000), this.abort.signal);
        } catch (failure) {
          return this.inbox.fail(failure as Error);
        }
      }
    }
  }

  private onEvent(e: EventSourceMessage): void {
    if (e.id !== undefined) this.lastReceivedId = e.id;
    const event = e.event ?? "message";
    this.ctx.metrics.add("events_received_total");
    if (this.events && !this.events.has(event)) return;
    this.inbox.push({ data: e.data, id: e.id, event, time: Date.now() * 1000 });
  }

  splits(): string[] {
    return [this.split];
  }

  async poll(maxRows: number): Promise<SourcePoll> {
    const items = await this.inbox.take(maxRows, 100);
    if (items.length === 0) return { batches: [] };
    for (const m of items) if (m.id !== undefined) this.lastTakenId = m.id;
    const { rows, times } = await decodeMessages(this.ctx, items, {
      data: (m) => m.data,
      time: (m) => m.time,
      where: (m) => `event${m.id !== undefined ? ` id '${m.id}'` : ""} (type '${m.event}')`,
      metadata: (m, key) => (key === "event_type" ? m.event : key === "event_id" ? m.id ?? null : null),
    });
    return { batches: rows.length > 0 ? [{ split: this.split, rows, times }] : [] };
  }

  snapshot(): Record<string, unknown> {
    return this.lastTakenId === undefined ? {} : { [this.split]: this.lastTakenId };
  }

  close(): void {
    this.abort.abort();
  }
}

export const sse = defineConnector({
  name: "sse",
  description: "Server-Sent Events source: exactly-once when the server resumes from Last-Event-ID, else at-most-once",
  options,
  needsFormat: true,
  validate: (info) => validateHttpTable(info, "sse", "source", ["http:", "https:"]),
  metadata: {
    event_type: { type: t.string(), description: "The event's type ('message' when unnamed)" },
    event_id: { type: t.string(), description: "The event's id (NULL when it has none)" },
  },
  source: {
    async create(ctx) {
      if (!ctx.format) throw new Error(`sse source '${ctx.tableName}' needs a format (e.g. format = 'json')`);
      // One connection: subtasks other than 0 read nothing.
      if (ctx.subtaskIndex !== 0) return idleReader();
      const { createParser } = await importFor("connector-sse", () => import("eventsource-parser"));
      return new SseSourceReader(ctx as SourceContext<SseOptions>, createParser);
    },
  },
});

export default definePlugin({ name: "connector-sse", version: "0.1.0", connectors: [sse] });
