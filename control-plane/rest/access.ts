/** Who may call the REST API: a token's role (reads need viewer, changes editor), and changes need a JSON body type or the CSRF header. */
import type { MiddlewareHandler } from "hono";
import { csrfRefusal } from "../security/http-guard.ts";
import { allows, forbiddenMessage, type Role } from "../security/roles.ts";
import type { TokenCheck } from "../services/tokens.ts";

export function restAccess(tokens: TokenCheck, needs: (method: string) => Role): MiddlewareHandler {
  return async (c, next) => {
    const identity = await tokens.identify(c.req.header("authorization") ?? null);
    if ("problem" in identity) return c.json({ error: identity.problem }, identity.status);
    const needed = needs(c.req.method);
    if (!allows(identity.caller, needed)) return c.json({ error: forbiddenMessage(identity.caller, needed, `${c.req.method} ${c.req.path}`) }, 403);
    const csrf = csrfRefusal(c.req.raw);
    if (csrf) return csrf;
    await next();
  };
}

/** REST: reading needs a viewer, anything else (pipelines) an editor. */
export const restRole = (method: string): Role => (method === "GET" || method === "HEAD" ? "viewer" : "editor");
