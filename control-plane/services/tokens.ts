/**
 * API tokens and who they belong to. When RUNNEL_API_TOKENS is set or any
 * token is stored, every API request needs `Authorization: Bearer <token>`,
 * and the token's role decides what it may do. Stored tokens are kept as
 * SHA-256 hashes; the token itself is shown once, when created.
 *
 * With no token at all the server is open — which it only is while it
 * listens on loopback (or the operator said RUNNEL_ALLOW_UNAUTHENTICATED=1).
 */
import { desc, eq } from "drizzle-orm";
import { createHash, randomBytes } from "node:crypto";
import { apiTokens } from "../db/schema.ts";
import type { Db } from "../db/connect.ts";
import { isLoopbackHost, isRole, ROLES, type Caller, type Role } from "../security/roles.ts";
import type { Services, Settings } from "./context.ts";
import { notFound, UserError } from "./errors.ts";
import { newId, nowMicros } from "./ids.ts";

export const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

export async function createToken(db: Db, name: string, role: Role = "viewer") {
  if (typeof name !== "string" || !name.trim()) throw new UserError("name the token (what or who uses it)", "option", { option: "name" });
  if (!isRole(role)) throw new UserError(`role must be one of ${ROLES.join(", ")}, got ${JSON.stringify(role)}`, "option", { option: "role" });
  const token = `rnl_${randomBytes(24).toString("base64url")}`;
  const id = newId("tok");
  const createdAt = nowMicros();
  await db.insert(apiTokens).values({ id, name, role, hash: hashToken(token), createdAt });
  return { id, name, role, token, createdAt };
}

/** The stored tokens without their hashes, newest first (the console's token list). */
export async function listTokens(db: Db) {
  return db
    .select({ id: apiTokens.id, name: apiTokens.name, role: apiTokens.role, createdAt: apiTokens.createdAt })
    .from(apiTokens)
    .orderBy(desc(apiTokens.createdAt), desc(apiTokens.id));
}

export async function deleteToken(db: Db, id: string) {
  const [row] = await db.delete(apiTokens).where(eq(apiTokens.id, id)).returning();
  if (!row) throw notFound("API token", id);
  return row;
}

/**
 * RUNNEL_API_TOKENS entries: `token` (an admin, as every token was before
 * roles existed) or `role:token` with role admin, editor or viewer.
 */
export function parseEnvTokens(entries: string[]): { token: string; role: Role }[] {
  return entries.map((entry) => {
    const colon = entry.indexOf(":");
    const role = colon > 0 ? entry.slice(0, colon).toLowerCase() : "";
    return isRole(role) ? { token: entry.slice(colon + 1), role } : { token: entry, role: "admin" as Role };
  });
}

/** Whether the server may run without tokens: only while it cannot be reached from elsewhere, unless the operator opted out. */
export const openWithoutTokens = (settings: Settings) => isLoopbackHost(settings.host) || settings.allowUnauthenticated;

export type Identity = { caller: Caller } | { problem: string; status: 401 | 403 };

/** Who a request is. Cached briefly: it runs on every request; a deleted token stops working within 2 s (at once on this control plane). */
export class TokenCheck {
  private cache: { at: number; byHash: Map<string, Caller> } | null = null;
  private readonly env: Map<string, Caller>;

  constructor(private readonly services: Pick<Services, "db" | "settings">) {
    this.env = new Map(parseEnvTokens(services.settings.apiTokens).map((t) => [hashToken(t.token), { name: null, role: t.role }]));
  }

  invalidate(): void {
    this.cache = null;
  }

  private async known(): Promise<Map<string, Caller>> {
    if (!this.cache || Date.now() - this.cache.at > 2000) {
      const rows = await this.services.db.select({ hash: apiTokens.hash, name: apiTokens.name, role: apiTokens.role }).from(apiTokens);
      const byHash = new Map(this.env);
      for (const r of rows) byHash.set(r.hash, { name: r.name, role: isRole(r.role) ? r.role : "viewer" });
      this.cache = { at: Date.now(), byHash };
    }
    return this.cache.byHash;
  }

  async anyTokens(): Promise<boolean> {
    return (await this.known()).size > 0;
  }

  async identify(authorization: string | null): Promise<Identity> {
    const known = await this.known();
    if (known.size === 0) {
      if (openWithoutTokens(this.services.settings)) return { caller: { name: null, role: "admin" } };
      return {
        problem: `this control plane listens on ${this.services.settings.host} and has no API token, so it answers nobody; create one with \`runnel token create --name <who> --role admin\``,
        status: 403,
      };
    }
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
    if (!m) return { problem: "this server needs an API token: send 'Authorization: Bearer <token>'", status: 401 };
    const caller = known.get(hashToken(m[1]!));
    return caller ? { caller } : { problem: "the API token is not valid (revoked or mistyped)", status: 401 };
  }
}
