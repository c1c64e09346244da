/**
 * What every HTTP request (and WebSocket upgrade) passes before it reaches
 * GraphQL, REST or /metrics:
 *
 * - its body fits the limit (413 with a message, before the body is read);
 * - a page of another site cannot use the API: a request whose Origin is
 *   neither the server's own nor listed in RUNNEL_CORS_ORIGINS is refused
 *   (this covers graphql-ws, where browsers skip CORS);
 * - while the server has no API token, it answers only requests addressed to
 *   a loopback name, so a site whose DNS points at 127.0.0.1 (DNS
 *   rebinding) cannot reach it through a browser;
 * - REST calls that change state carry a JSON content type or the CSRF
 *   header, so no HTML form or "simple" cross-site request can make them
 *   (GraphQL's CSRF prevention does the same for GraphQL).
 */
import type { Settings } from "../services/context.ts";
import { isLoopbackHost } from "./roles.ts";

/** Headers that browsers never add to simple requests: their presence proves a script of an allowed page (or no browser at all). */
export const CSRF_HEADERS = ["x-runnel-csrf", "x-graphql-yoga-csrf", "apollo-require-preflight"];

const json = (status: number, error: string, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify({ error }), { status, headers: { "content-type": "application/json", ...headers } });

/** The host:port part of the Host header, lower case. */
const hostOf = (request: Request) => (request.headers.get("host") ?? new URL(request.url).host).toLowerCase();

function hostName(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return colon >= 0 ? host.slice(0, colon) : host;
}

/**
 * Whether the page (if any) that sent the request may use the API: no Origin
 * (not a browser, or a same-origin navigation), a listed one, or the
 * server's own — by Host, or by X-Forwarded-Host behind a proxy (a page of
 * another site can set neither on a request it sends).
 */
export function originAllowed(settings: Settings, request: Request): boolean {
  const origin = request.headers.get("origin");
  if (origin === null) return true;
  if (settings.corsOrigins.includes(origin.replace(/\/+$/, ""))) return true;
  let host: string;
  try {
    host = new URL(origin).host.toLowerCase();
  } catch {
    return false; // "null" (sandboxed frames, file://) and garbage
  }
  const forwarded = request.headers.get("x-forwarded-host")?.split(",")[0]!.trim().toLowerCase();
  return host === hostOf(request) || host === forwarded;
}

export interface GuardState {
  /** Whether any API token exists now (the server is open while none does). */
  anyTokens(): Promise<boolean>;
}

/** null when the request may go on; otherwise the refusal. Reads nothing of the body. */
export async function guardRequest(settings: Settings, state: GuardState, request: Request): Promise<Response | null> {
  const length = request.headers.get("content-length");
  if (length !== null && Number(length) > settings.maxBodyBytes) return tooLarge(settings, Number(length));
  if (!originAllowed(settings, request)) {
    return json(403, `requests from pages of ${request.headers.get("origin")} are not allowed; the control plane's RUNNEL_CORS_ORIGINS lists the origins that may call it`);
  }
  if (!settings.allowUnauthenticated && !isLoopbackHost(hostName(hostOf(request))) && !(await state.anyTokens())) {
    return json(
      403,
      `this control plane has no API token, so it answers only requests addressed to localhost (this one was for '${hostOf(request)}'); create a token (runnel token create) to serve other names`,
    );
  }
  return null;
}

export function tooLarge(settings: Settings, bytes?: number): Response {
  return json(
    413,
    `the request body${bytes !== undefined ? ` (${bytes} bytes)` : ""} is larger than this control plane accepts (${settings.maxBodyBytes} bytes, RUNNEL_MAX_BODY_BYTES)`,
    { connection: "close" },
  );
}

/**
 * The request with its body read into memory, unless it is larger than the
 * limit (a body without Content-Length, sent in chunks, is counted as it
 * arrives and cut off there).
 */
export async function withBoundedBody(settings: Settings, request: Request): Promise<Request | Response> {
  if (!request.body || request.headers.get("content-length") !== null) return request;
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = request.body.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > settings.maxBodyBytes) {
      void reader.cancel().catch(() => {});
      return tooLarge(settings);
    }
    chunks.push(value);
  }
  const headers = new Headers(request.headers);
  headers.set("content-length", String(size));
  return new Request(request.url, { method: request.method, headers, body: Buffer.concat(chunks) });
}

const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** For REST: a state-changing call needs a JSON body type or a CSRF header; null when it has one. */
export function csrfRefusal(request: Request): Response | null {
  if (!STATE_CHANGING.has(request.method)) return null;
  const type = (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type === "application/json" || /^application\/[a-z0-9.+-]+\+json$/.test(type)) return null;
  if (CSRF_HEADERS.some((h) => request.headers.has(h))) return null;
  return json(
    415,
    `${request.method} calls need 'Content-Type: application/json' (or the header 'x-runnel-csrf: 1' when there is no body), so that no other site's page can make them`,
  );
}
