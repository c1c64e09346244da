/**
 * The test schema registry (scripts/services/schema-registry.sh, or
 * RUNNEL_TEST_SCHEMA_REGISTRY) and the independent client: Confluent's Python
 * serializers from the shared venv (test/kit/confluent_client.py).
 */
import { join } from "node:path";
import { KAFKA } from "./kafka.ts";

export const SCHEMA_REGISTRY = process.env.RUNNEL_TEST_SCHEMA_REGISTRY ?? "http://127.0.0.1:18081";
export const SCHEMA_REGISTRY_USER = { user: "runnel", password: "runnel-registry-secret" };
const VENV = process.env.RUNNEL_VENV ?? join(process.env.HOME ?? "/root", ".cache", "runnel", "venv");

/** The registry options of a test table (basic auth included). */
export const REGISTRY_OPTS = `'schema_registry.endpoint' = '${SCHEMA_REGISTRY}', 'schema_registry.api_key' = '${SCHEMA_REGISTRY_USER.user}', 'schema_registry.api_secret' = '${SCHEMA_REGISTRY_USER.password}'`;

/** Runs test/kit/confluent_client.py; returns its stdout's JSON lines. */
export async function confluentClient(args: string[]): Promise<any[]> {
  const proc = Bun.spawn([join(VENV, "bin", "python"), join(import.meta.dir, "confluent_client.py"), ...args], {
    stdout: "pipe",
    stderr: "pipe",
    env: {
      ...process.env,
      RUNNEL_TEST_KAFKA: KAFKA,
      RUNNEL_TEST_SCHEMA_REGISTRY: SCHEMA_REGISTRY,
      RUNNEL_TEST_SCHEMA_REGISTRY_AUTH: `${SCHEMA_REGISTRY_USER.user}:${SCHEMA_REGISTRY_USER.password}`,
    },
  });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`confluent_client.py ${args.join(" ")} failed (${code}): ${err}`);
  return out.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
}
