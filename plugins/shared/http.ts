/** What the HTTP connectors (sse, websocket, polling_http, webhook) share: options, retries, error text. */
import { opt, type TableInfo } from "../../core/plugin-api/index.ts";

/** Options every HTTP connector has, with Arroyo's names. */
export const httpOptions = {
  endpoint: opt.string({ required: true, description: "The URL to connect to" }),
  headers: opt.string({
    secret: true,
    description: "Comma-separated headers sent with each request, 'Name: value,Other: value' (secrets as {{ ENV_VAR }})",
  }),
};

/** Reads Arroyo's `headers` option: comma-separated `Name: value` pairs. */
export function parseHeaders(raw: string | undefined, option = "headers"): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const part of raw.split(",")) {
    if (!part.trim()) continue;
    const colon = part.indexOf(":");
    if (colon <= 0) throw new Error(`option '${option}': '${part.trim()}' is not 'Name: value'; separate headers with commas`);
    out[part.slice(0, colon).trim()] = part.slice(colon + 1).trim();
  }
  return out;
}

/** The endpoint as a URL with one of the given protocols, or an error naming the option. */
export function checkEndpoint(raw: string, protocols: string[], option = "endpoint"): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`option '${option}': '${raw}' is not a URL`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new Error(`option '${option}': '${url.protocol}//' is not supported here; use ${protocols.map((p) => `${p}//`).join(" or ")}`);
  }
  return url;
}

/** The checks every HTTP connector makes at planning time: the direction it has, the endpoint, the headers. */
export function validateHttpTable(info: TableInfo<unknown>, connector: string, direction: "source" | "sink", protocols: string[]): void {
  const table = info as TableInfo<{ endpoint: string; headers?: string }>;
  if (table.role !== direction) {
    throw new Error(
      direction === "source"
        ? `${connector} is a source only; to send rows over HTTP use connector = 'webhook'`
        : `${connector} is a sink only; to read over HTTP use connector = 'polling_http', 'sse' or 'websocket'`,
    );
  }
  checkEndpoint(table.options.endpoint, protocols);
  parseHeaders(table.options.headers);
}

/**
 * A remote that keeps failing: counts the failure, says how long to wait
 * before the next try, and fails once it has failed for `limitMs` without a
 * success in between (the job then restarts from its checkpoint).
 */
export class Outage {
  private since: number | null = null;
  private attempt = 0;

  constructor(
    private readonly ctx: { metrics: { add(name: string, n?: number): void }; log: { warn(m: string): void } },
    /** "<connector> source '<table>': '<endpoint>' (option 'endpoint')", the start of messages. */
    private readonly what: string,
    private readonly limitMs = 120_000,
  ) {}

  ok(): void {
    this.since = null;
    this.attempt = 0;
  }

  /** The wait before the next try (backoff from `initialMs` up to `maxMs`); throws when the outage has lasted too long. */
  failed(reason: string, initialMs: number, maxMs: number): number {
    this.ctx.metrics.add("errors_total");
    this.since ??= Date.now();
    if (Date.now() - this.since > this.limitMs) throw new Error(`${this.what} failed for ${this.limitMs / 1000} s; last: ${reason}`);
    if (this.attempt === 0) this.ctx.log.warn(`${this.what}: ${reason}; retrying`);
    return backoffMs(this.attempt++, initialMs, maxMs);
  }
}

/** Statuses worth retrying: the server is busy, down or timed out. */
export function retriable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || status >= 500;
}

/** Exponential backoff with full jitter, capped; a server's Retry-After (seconds) wins when given. */
export function backoffMs(attempt: number, initialMs: number, maxMs: number, retryAfter?: string | null): number {
  const after = retryAfter ? Number(retryAfter) : NaN;
  if (Number.isFinite(after) && after >= 0) return Math.min(after * 1000, maxMs);
  const cap = Math.min(maxMs, initialMs * 2 ** attempt);
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}

/** "HTTP 503 Service Unavailable: <the start of the body>" — the remote answer, for errors. */
export async function describeResponse(res: Response): Promise<string> {
  let body = "";
  try {
    body = (await res.text()).trim().replace(/\s+/g, " ");
  } catch {
    // no body
  }
  if (body.length > 300) body = `${body.slice(0, 300)}…`;
  return `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ""}${body ? `: ${body}` : ""}`;
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

/** Sleeps, but wakes when the job stops. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done);
  });
}
