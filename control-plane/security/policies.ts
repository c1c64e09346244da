/**
 * What pipelines the control plane runs may reach, as the core's policies
 * (the CLI passes none: its SQL is the shell user's own).
 *
 * - Environment variables through `{{ VAR }}`: those named in
 *   RUNNEL_ENV_ALLOWLIST (`PREFIX_*` allows a prefix) and, always, those
 *   starting with RUNNEL_SECRET_ — never the control plane's own keys.
 * - Local files: under the directories of RUNNEL_FILE_ROOTS.
 */
import type { FileAccess } from "../../core/plugin-api/index.ts";
import { confinedFiles } from "../../core/security/file-access.ts";
import type { EnvPolicy } from "../../core/sql/tables.ts";

export const filePolicy = (roots: string[]): FileAccess =>
  confinedFiles(roots, "the control plane's RUNNEL_FILE_ROOTS lists the directories pipelines may use");

const ALWAYS = ["RUNNEL_SECRET_*"];
/** The control plane's own credentials, whatever the allowlist says. */
const NEVER = new Set(["RUNNEL_SECRET_KEY", "RUNNEL_SECRET_KEY_PREVIOUS", "RUNNEL_API_TOKENS", "DATABASE_URL"]);

/** Whether `name` matches one of `patterns` (exact names, or prefixes ending in `*`). */
export const matchesAny = (name: string, patterns: string[]) => patterns.some((p) => (p.endsWith("*") ? name.startsWith(p.slice(0, -1)) : name === p));

export function envPolicy(allowlist: string[]): EnvPolicy {
  const patterns = [...ALWAYS, ...allowlist];
  return {
    allows: (name) => !NEVER.has(name) && matchesAny(name, patterns),
    hint: "the control plane resolves only variables starting with RUNNEL_SECRET_ or named in its RUNNEL_ENV_ALLOWLIST (never RUNNEL_SECRET_KEY, RUNNEL_API_TOKENS or DATABASE_URL)",
  };
}
