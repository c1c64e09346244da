/**
 * Roles of API tokens: a viewer reads and subscribes; an editor also creates
 * and changes pipelines and UDFs (and so runs code in workers); an admin also
 * manages tokens, connection profiles and settings.
 */
export const ROLES = ["viewer", "editor", "admin"] as const;
export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { viewer: 0, editor: 1, admin: 2 };

export const isRole = (v: unknown): v is Role => typeof v === "string" && (ROLES as readonly string[]).includes(v);

/** Who is calling: a token's name (null for RUNNEL_API_TOKENS entries and open servers) and role. */
export interface Caller {
  name: string | null;
  role: Role;
}

export const allows = (caller: Caller, needed: Role) => RANK[caller.role] >= RANK[needed];

export function forbiddenMessage(caller: Caller, needed: Role, what: string): string {
  return `${what} needs the ${needed} role; this token${caller.name ? ` ('${caller.name}')` : ""} is ${caller.role === "admin" ? "an" : "a"} ${caller.role}`;
}

/** Host names that only reach this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
