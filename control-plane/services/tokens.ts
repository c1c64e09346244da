/**
 * API tokens. When RUNNEL_API_TOKENS is set or any token is stored, every API
 * request needs `Authorization: Bearer <token>`. Stored tokens are kept as
 * SHA-256 hashes; the token itself is shown once, when created.
 */
import { desc, eq } from "drizzle-orm";
import { randomBytes, createHash, timingSafeEqual } from "node:crypto";
import { apiTokens } from "../db/schema.ts";
import type { Services } from "./context.ts";
import { notFound, UserError } from "./errors.ts";
import { newId, nowMicros } from "./ids.ts";

export const hashToken = (token: string) => createHash("sha256").update(token).digest("hex");

export async function createToken(services: Services, name: string) {
  if (!name?.trim()) throw new UserError("name the token (what or who uses it)", "option", { option: "name" });
  const token = `rnl_${randomBytes(24).toString("base64url")}`;
  const id = newId("tok");
  await services.db.insert(apiTokens).values({ id, name, hash: hashToken(token), createdAt: nowMicros() });
  return { id, name, token };
}

/** The stored tokens without their hashes (the console's token list). */
export function listTokens(services: Services) {
  return services.db
    .select({ id: apiTokens.id, name: apiTokens.name, createdAt: apiTokens.createdAt })
    .from(apiTokens)
    .orderBy(desc(apiTokens.createdAt), desc(apiTokens.id));
}

export async function deleteToken(services: Services, id: string) {
  const [row] = await services.db.delete(apiTokens).where(eq(apiTokens.id, id)).returning();
  if (!row) throw notFound("API token", id);
  return row;
}

/** Whether requests need a token, and whether this one is valid. Cached briefly: it runs on every request. */
export class TokenCheck {
  private cache: { at: number; hashes: Set<string> } | null = null;
  private readonly envHashes: Set<string>;

  constructor(private readonly services: Services) {
    this.envHashes = new Set(services.settings.apiTokens.map(hashToken));
  }

  invalidate(): void {
    this.cache = null;
  }

  private async hashes(): Promise<Set<string>> {
    if (!this.cache || Date.now() - this.cache.at > 2000) {
      const rows = await this.services.db.select({ hash: apiTokens.hash }).from(apiTokens);
      this.cache = { at: Date.now(), hashes: new Set([...this.envHashes, ...rows.map((r) => r.hash)]) };
    }
    return this.cache.hashes;
  }

  /** null when the request may proceed, otherwise the reason it may not. */
  async check(authorization: string | null): Promise<string | null> {
    const hashes = await this.hashes();
    if (hashes.size === 0) return null;
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
    if (!m) return "this server needs an API token: send 'Authorization: Bearer <token>'";
    const h = Buffer.from(hashToken(m[1]!), "hex");
    for (const known of hashes) {
      const k = Buffer.from(known, "hex");
      if (k.length === h.length && timingSafeEqual(k, h)) return null;
    }
    return "the API token is not valid (revoked or mistyped)";
  }
}
