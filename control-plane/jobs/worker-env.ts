/**
 * What a job's worker gets from the control plane: it runs the pipeline's
 * code (its UDFs), so it gets what that pipeline needs and nothing more.
 *
 * - Its environment: the few variables any process needs (PATH, HOME,
 *   locale, time zone), those the operator lists in RUNNEL_WORKER_ENV, and
 *   the AWS settings when checkpoints live on S3 (the worker writes them).
 *   Never the control plane's tokens, secret key or database URL.
 * - Its configuration (on stdin, not in the environment): the secrets of the
 *   connection profiles its tables use, and the values of the allowlisted
 *   variables its SQL names with `{{ VAR }}`.
 */
import { storageScheme } from "../../core/checkpoint/store.ts";
import { ENV_REF } from "../../core/sql/tables.ts";
import { envPolicy, matchesAny } from "../security/policies.ts";
import type { Settings } from "../services/context.ts";

const BASE = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "LC_*", "TZ", "TMPDIR"];
const NEVER = new Set(["RUNNEL_API_TOKENS", "RUNNEL_SECRET_KEY", "RUNNEL_SECRET_KEY_PREVIOUS", "DATABASE_URL"]);

/** What a scheduler other than `process` needs in the job's process to start workers: how to reach its API and its RUNNEL_<SCHEDULER>_* options. */
const schedulerEnv = (scheduler: string) =>
  scheduler === "process" ? [] : [`RUNNEL_${scheduler.toUpperCase()}_*`, ...(scheduler === "kubernetes" ? ["KUBERNETES_SERVICE_*", "KUBECONFIG", "RUNNEL_POD_IP"] : [])];

export function workerEnvironment(settings: Settings, source: Record<string, string | undefined> = process.env): Record<string, string> {
  const patterns = [...BASE, ...settings.workerEnv, ...(storageScheme(settings.checkpointDir) === "s3" ? ["AWS_*"] : []), ...schedulerEnv(settings.scheduler)];
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value !== undefined && !NEVER.has(name) && matchesAny(name, patterns)) env[name] = value;
  }
  return env;
}

/**
 * The values of the variables `{{ VAR }}` names in the query or in the
 * options of the profiles it uses, where the allowlist lets them be read and
 * they are set (a missing one is reported by the worker, naming the option).
 */
export function referencedEnv(settings: Settings, texts: string[], source: Record<string, string | undefined> = process.env): Record<string, string> {
  const policy = envPolicy(settings.envAllowlist);
  const out: Record<string, string> = {};
  for (const text of texts) {
    for (const m of text.matchAll(ENV_REF)) {
      const name = m[1]!;
      const value = source[name];
      if (value !== undefined && policy.allows(name)) out[name] = value;
    }
  }
  return out;
}
