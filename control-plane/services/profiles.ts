/**
 * Connection profiles: reusable connection settings (brokers, credentials) for
 * a connector, referred to from SQL as `connection_profile = 'name'`. Secrets
 * are write-only: sealed at rest (security/secret-box.ts), handed only to the
 * workers of pipelines that use the profile, never returned or logged.
 */
import { eq } from "drizzle-orm";
import { COMMON_OPTIONS } from "../../core/sql/tables.ts";
import { connectionProfiles, pipelines } from "../db/schema.ts";
import { isSealed } from "../security/secret-box.ts";
import { isSecretOption, maskConfigValues } from "../security/redact.ts";
import type { Services } from "./context.ts";
import { notFound, UserError } from "./errors.ts";
import { newId, nowMicros } from "./ids.ts";

export type ProfileRow = typeof connectionProfiles.$inferSelect;

/** What the API shows: no secret values (and no password inside a URL). */
export const publicProfile = (p: ProfileRow) => ({
  id: p.id,
  name: p.name,
  connector: p.connector,
  config: maskConfigValues(p.config),
  secretKeys: isSealed(p.secrets) ? p.secrets.keys : Object.keys(p.secrets).sort(),
  createdAt: p.createdAt,
});

function stringMap(value: unknown, field: string): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new UserError(`${field} must be an object of option names to values`, "option", { option: field });
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean") {
      throw new UserError(`${field}.${k} must be a string, number or boolean`, "option", { option: `${field}.${k}` });
    }
    out[k] = String(v);
  }
  return out;
}

export async function listProfiles(services: Services) {
  return (await services.db.select().from(connectionProfiles).orderBy(connectionProfiles.name)).map(publicProfile);
}

export async function createProfile(services: Services, input: { name: string; connector: string; config: unknown; secrets?: unknown }) {
  if (!/^[A-Za-z0-9_.-]+$/.test(input.name ?? "")) throw new UserError(`profile name '${input.name}' may hold letters, digits, _ . -`, "option", { option: "name" });
  const connector = services.registry.connector(input.connector);
  if (!connector) {
    const known = [...services.registry.connectors.keys()].sort().join(", ");
    throw new UserError(`unknown connector '${input.connector}'; available connectors: ${known}`, "option", { option: "connector" });
  }
  const config = stringMap(input.config, "config");
  const secrets = stringMap(input.secrets, "secrets");
  // An option the connector declares secret is kept as one, wherever it was given.
  for (const key of Object.keys(config)) {
    if (isSecretOption(services.registry, connector.name, config.format, key)) {
      secrets[key] ??= config[key]!;
      delete config[key];
    }
  }
  // Every key must be an option of the connector (values are checked when a table uses the profile,
  // since `{{ ENV }}` references are resolved only where the job runs).
  const formatOptions = new Set([...services.registry.formats.values()].flatMap((f) => [...Object.keys(f.options), ...Object.keys(f.options).map((k) => `${f.name}.${k}`)]));
  const valid = [...Object.keys(connector.options), ...COMMON_OPTIONS.filter((o) => o !== "connection_profile" && o !== "connector")];
  for (const key of [...Object.keys(config), ...Object.keys(secrets)]) {
    if (!valid.includes(key) && !formatOptions.has(key)) {
      throw new UserError(
        `unknown option '${key}' for connector '${connector.name}'. Valid options: ${valid.sort().join(", ")} (and format options)`,
        "option",
        { option: key },
      );
    }
  }
  const [existing] = await services.db.select().from(connectionProfiles).where(eq(connectionProfiles.name, input.name));
  if (existing) throw new UserError(`a connection profile named '${input.name}' exists already`, "conflict");
  const id = newId("cp");
  const [row] = await services.db
    .insert(connectionProfiles)
    .values({ id, name: input.name, connector: connector.name, config, secrets: await services.secrets.seal(secrets, `profile:${id}`), createdAt: nowMicros() })
    .returning();
  return publicProfile(row!);
}

export async function deleteProfile(services: Services, id: string) {
  const [row] = await services.db.select().from(connectionProfiles).where(eq(connectionProfiles.id, id));
  if (!row) throw notFound("connection profile", id);
  const users = (await services.db.select({ id: pipelines.id, query: pipelines.query }).from(pipelines)).filter((p) => p.query.includes(`'${row.name}'`));
  if (users.length) throw new UserError(`connection profile '${row.name}' is used by pipeline ${users.map((u) => u.id).join(", ")}`, "conflict");
  await services.db.delete(connectionProfiles).where(eq(connectionProfiles.id, id));
  return publicProfile(row);
}

/**
 * Seals secrets stored in plain text (rows from before sealing) or with a
 * previous key, with the current key. Runs at start; returns how many rows
 * it changed.
 */
export async function resealProfiles(services: Pick<Services, "db" | "secrets">): Promise<number> {
  let changed = 0;
  for (const row of await services.db.select().from(connectionProfiles)) {
    if (services.secrets.isCurrent(row.secrets)) continue;
    const context = `profile:${row.id}`;
    let values: Record<string, string>;
    try {
      values = await services.secrets.unseal(row.secrets, context);
    } catch (err) {
      // Sealed with a key this control plane lacks: leave it for one that has it (the message says which).
      console.error(`warning: connection profile '${row.name}': ${(err as Error).message}`);
      continue;
    }
    await services.db.update(connectionProfiles).set({ secrets: await services.secrets.seal(values, context) }).where(eq(connectionProfiles.id, row.id));
    changed++;
  }
  return changed;
}
