/** UDFs stored as module source; each is checked by importing it in the sandbox (never in the control plane) before it is saved. */
import { eq } from "drizzle-orm";
import { pipelines, udfs } from "../db/schema.ts";
import type { Services } from "./context.ts";
import { notFound, UserError } from "./errors.ts";
import { newId, nowMicros } from "./ids.ts";
import { sandboxFailure } from "./pipelines.ts";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export async function listUdfs(services: Services) {
  return services.db.select().from(udfs).orderBy(udfs.name);
}

export async function createUdf(services: Services, input: { name: string; definition: string; description?: string | null }) {
  if (!NAME.test(input.name ?? "")) throw new UserError(`UDF name '${input.name}' must be a SQL identifier (letters, digits, _)`, "option", { option: "name" });
  if (typeof input.definition !== "string" || !input.definition.trim()) throw new UserError("definition is empty: give the module source", "option", { option: "definition" });
  const bytes = Buffer.byteLength(input.definition);
  if (bytes > services.settings.maxSqlBytes) {
    throw new UserError(`the definition is ${bytes} bytes; this control plane takes at most ${services.settings.maxSqlBytes} (RUNNEL_MAX_SQL_BYTES)`, "option", { option: "definition" });
  }
  const [existing] = await services.db.select().from(udfs).where(eq(udfs.name, input.name));
  if (existing) throw new UserError(`a UDF named '${input.name}' exists already (${existing.id}); delete it first to replace it`, "conflict");
  const checked = await services.sandbox.run({ kind: "udf", name: input.name, definition: input.definition }, true).catch((err) => sandboxFailure(err, "definition"));
  if (!checked.ok) throw new UserError(checked.error.message, "option", { option: "definition" });
  const [row] = await services.db
    .insert(udfs)
    .values({ id: newId("udf"), name: input.name, definition: input.definition, description: input.description ?? null, createdAt: nowMicros() })
    .returning();
  return row!;
}

export async function deleteUdf(services: Services, id: string) {
  const [row] = await services.db.select().from(udfs).where(eq(udfs.id, id));
  if (!row) throw notFound("UDF", id);
  const users = (await services.db.select({ id: pipelines.id, udfs: pipelines.udfs }).from(pipelines)).filter((p) => p.udfs.includes(row.name));
  if (users.length) throw new UserError(`UDF '${row.name}' is used by pipeline ${users.map((u) => u.id).join(", ")}; delete those first`, "conflict");
  await services.db.delete(udfs).where(eq(udfs.id, id));
  return row;
}
