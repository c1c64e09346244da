/**
 * `websocket`: a WebSocket source (Arroyo's options: endpoint, headers,
 * subscription_message; subscription_messages is a JSON array of them). One
 * connection, on subtask 0 (Bun's WebSocket client). The subscription
 * messages are sent in order each time the socket opens; each text or binary
 * message is one record in the table's format. A closed socket is reopened
 * with backoff. At-most-once: WebSocket servers do not replay, so messages
 * sent while the job is down or reconnecting are lost. Event time is the
 * arrival time.
 */
import { defineConnector, definePlugin, opt, type SourceContext, type SourcePoll, type SourceReader, type TableInfo } from "../../core/plugin-api/index.ts";
import { decodeMessages, idleReader } from "../shared/decode.ts";
import { describeError, Outage, httpOptions, parseHeaders, sleep, validateHttpTable } from "../shared/http.ts";
import { Inbox } from "../shared/inbox.ts";

const options = {
  ...httpOptions,
  subscription_message: opt.string({ description: "A message sent after the socket opens (e.g. {\"type\":\"subscribe\",\"channels\":[\"updates\"]})" }),
  subscription_messages: opt.string({ description: "A JSON array of messages sent in order after the socket opens (after subscription_message)" }),
};

interface WebsocketOptions {
  endpoint: string;
  headers?: string;
  subscription_message?: string;
  subscription_messages?: string;
}

interface Received {
  data: string | Uint8Array;
  time: number;
  n: number;
}

function subscriptionMessages(o: WebsocketOptions): string[] {
  const out = o.subscription_message ? [o.subscription_message] : [];
  if (o.subscription_messages) {
    let list: unknown;
    try {
      list = JSON.parse(o.subscription_messages);
    } catch (err) {
      throw new Error(`option 'subscription_messages' is not JSON: ${(err as Error).message}; write a JSON array of strings`);
    }
    if (!Array.isArray(list)) throw new Error("option 'subscription_messages' must be a JSON array of messages");
    for (const m of list) out.push(typeof m === "string" ? m : JSON.stringify(m));
  }
  return out;
}

export class WebsocketSourceReader implements SourceReader {
  private readonly inbox = new Inbox<Received>(100_000);
  private socket: WebSocket | null = null;
  private stopped = false;
  private received = 0;
  private readonly subscriptions: string[];
  private readonly headers: Record<string, string>;

  constructor(private readonly ctx: SourceContext<WebsocketOptions>) {
    this.subscriptions = subscriptionMessages(ctx.options);
    this.headers = parseHeaders(ctx.options.headers);
    ctx.signal.addEventListener("abort", () => this.close());
    void this.run();
  }

  /** Opens the socket, and reopens it with backoff whenever it closes, until the job stops. */
  private async run(): Promise<void> {
    const ctx = this.ctx;
    const outage = new Outage(ctx, `websocket source '${ctx.tableName}': '${ctx.options.endpoint}' (option 'endpoint')`);
    while (!this.stopped) {
      const outcome = await this.connectOnce();
      if (this.stopped) return;
      let wait = 250;
      if (outcome.opened) {
        outage.ok();
        ctx.metrics.add("reconnects_total");
        ctx.log.warn(`websocket source '${ctx.tableName}': the socket closed (${outcome.reason}); reopening (messages sent meanwhile are lost)`);
      } else {
        try {
          wait = outage.failed(`cannot open the socket: ${outcome.reason}`, 250, 10_000);
        } catch (failure) {
          return this.inbox.fail(failure as Error);
        }
      }
      await sleep(wait, ctx.signal);
    }
  }

  /** One connection, until it closes. */
  private connectOnce(): Promise<{ opened: boolean; reason: string }> {
    const ctx = this.ctx;
    return new Promise((resolve) => {
      let opened = false;
      let ws: WebSocket;
      try {
        // Bun's client takes headers (the browser API does not).
        ws = new WebSocket(ctx.options.endpoint, { headers: this.headers } as unknown as string[]);
      } catch (err) {
        return resolve({ opened: false, reason: describeError(err) });
      }
      ws.binaryType = "arraybuffer";
      this.socket = ws;
      ws.onopen = () => {
        opened = true;
        for (const m of this.subscriptions) ws.send(m);
        if (this.subscriptions.length > 0) ctx.metrics.add("subscriptions_sent_total", this.subscriptions.length);
      };
      ws.onmessage = (e) => {
        const data = typeof e.data === "string" ? e.data : new Uint8Array(e.data as ArrayBuffer);
        ctx.metrics.add("messages_received_total");
        ctx.metrics.add("bytes_received_total", typeof data === "string" ? data.length : data.byteLength);
        this.inbox.push({ data, time: Date.now() * 1000, n: ++this.received });
      };
      ws.onerror = () => {};
      ws.onclose = (e) => {
        this.socket = null;
        resolve({ opened, reason: `code ${e.code}${e.reason ? `: ${e.reason}` : ""}` });
      };
    });
  }

  splits(): string[] {
    return ["websocket"];
  }

  async poll(maxRows: number): Promise<SourcePoll> {
    const items = await this.inbox.take(maxRows, 100);
    if (items.length === 0) return { batches: [] };
    const { rows, times } = await decodeMessages(this.ctx, items, {
      data: (m) => m.data,
      time: (m) => m.time,
      where: (m) => `message ${m.n} from '${this.ctx.options.endpoint}'`,
    });
    return { batches: rows.length > 0 ? [{ split: "websocket", rows, times }] : [] };
  }

  snapshot(): Record<string, unknown> {
    return {};
  }

  close(): void {
    this.stopped = true;
    this.socket?.close();
  }
}

export const websocket = defineConnector({
  name: "websocket",
  description: "WebSocket source with subscription messages sent on connect (at-most-once)",
  options,
  needsFormat: true,
  validate(info: TableInfo<unknown>) {
    validateHttpTable(info, "websocket", "source", ["ws:", "wss:"]);
    subscriptionMessages((info as TableInfo<WebsocketOptions>).options);
  },
  source: {
    create(ctx) {
      if (!ctx.format) throw new Error(`websocket source '${ctx.tableName}' needs a format (e.g. format = 'json')`);
      // One connection: subtasks other than 0 read nothing.
      return ctx.subtaskIndex === 0 ? new WebsocketSourceReader(ctx as SourceContext<WebsocketOptions>) : idleReader();
    },
  },
});

export default definePlugin({ name: "connector-websocket", version: "0.1.0", connectors: [websocket] });
