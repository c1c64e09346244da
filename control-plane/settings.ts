/** Control-plane settings from the environment; nothing needs to be set, and the defaults are the safe ones. */
import { availableParallelism, hostname, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { normalizeStateLocation } from "../core/checkpoint/store.ts";
import type { Settings } from "./services/context.ts";

function int(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be a whole number${min > 0 ? ` ≥ ${min}` : ""}, got '${raw}'`);
  return n;
}

const list = (name: string) => (process.env[name] ?? "").split(",").map((t) => t.trim()).filter(Boolean);

function flag(name: string): boolean {
  const raw = (process.env[name] ?? "").trim().toLowerCase();
  if (raw === "" || raw === "0" || raw === "false" || raw === "no") return false;
  if (raw === "1" || raw === "true" || raw === "yes") return true;
  throw new Error(`${name} must be 1 or 0, got '${process.env[name]}'`);
}

/** Each worker is a Bun process of 150-300 MB that wants a core when busy: four per core, and no more than memory holds at 256 MB each. */
export const defaultMaxWorkers = () => Math.max(1, Math.min(availableParallelism() * 4, Math.floor(totalmem() / (256 * 1024 * 1024))));

export function settingsFromEnv(overrides: Partial<Settings> = {}): Settings {
  const dataDir = resolve(overrides.dataDir ?? process.env.RUNNEL_DATA_DIR ?? "./data");
  const checkpointUrl = process.env.RUNNEL_CHECKPOINT_URL ?? join(dataDir, "checkpoints");
  const fileRoots = list("RUNNEL_FILE_ROOTS").map((r) => resolve(r));
  return {
    port: int("PORT", 8000),
    host: process.env.RUNNEL_HOST?.trim() || "127.0.0.1",
    allowUnauthenticated: flag("RUNNEL_ALLOW_UNAUTHENTICATED"),
    corsOrigins: list("RUNNEL_CORS_ORIGINS").map((o) => o.replace(/\/+$/, "")),
    maxBodyBytes: int("RUNNEL_MAX_BODY_BYTES", 1024 * 1024, 1024),
    maxSqlBytes: int("RUNNEL_MAX_SQL_BYTES", 1024 * 1024, 1024),
    dataDir,
    checkpointDir: normalizeStateLocation(checkpointUrl),
    instanceId: `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`,
    heartbeatMs: int("RUNNEL_HEARTBEAT_MS", 500, 10),
    heartbeatTimeoutMs: int("RUNNEL_HEARTBEAT_TIMEOUT_MS", 15_000, 100),
    maxRestarts: int("RUNNEL_MAX_RESTARTS", 10),
    leaseMs: int("RUNNEL_LEASE_MS", 5000, 100),
    apiTokens: list("RUNNEL_API_TOKENS"),
    fileRoots: fileRoots.length > 0 ? fileRoots : [join(dataDir, "files")],
    envAllowlist: list("RUNNEL_ENV_ALLOWLIST"),
    workerEnv: list("RUNNEL_WORKER_ENV"),
    workerWrapper: (process.env.RUNNEL_WORKER_WRAPPER ?? "").split(/\s+/).filter(Boolean),
    maxWorkers: int("RUNNEL_MAX_WORKERS", defaultMaxWorkers(), 1),
    jobWorkers: int("RUNNEL_JOB_WORKERS", availableParallelism(), 1),
    scheduler: process.env.RUNNEL_SCHEDULER?.trim() || "process",
    maxValidations: int("RUNNEL_MAX_VALIDATIONS", 2, 1),
    validationTimeoutMs: int("RUNNEL_VALIDATION_TIMEOUT_MS", 20_000, 100),
    validationMemoryMb: int("RUNNEL_VALIDATION_MEMORY_MB", 768, 64),
    secretKey: process.env.RUNNEL_SECRET_KEY || undefined,
    previousSecretKey: process.env.RUNNEL_SECRET_KEY_PREVIOUS || undefined,
    ...overrides,
  };
}
