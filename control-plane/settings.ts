/** Control-plane settings from the environment; nothing needs to be set. */
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { normalizeStateLocation } from "../core/checkpoint/store.ts";
import type { Settings } from "./services/context.ts";

function int(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number, got '${raw}'`);
  return n;
}

export function settingsFromEnv(overrides: Partial<Settings> = {}): Settings {
  const dataDir = resolve(process.env.RUNNEL_DATA_DIR ?? "./data");
  const checkpointUrl = process.env.RUNNEL_CHECKPOINT_URL ?? join(dataDir, "checkpoints");
  return {
    port: int("PORT", 8000),
    dataDir,
    checkpointDir: normalizeStateLocation(checkpointUrl),
    instanceId: `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`,
    heartbeatMs: int("RUNNEL_HEARTBEAT_MS", 500),
    heartbeatTimeoutMs: int("RUNNEL_HEARTBEAT_TIMEOUT_MS", 5000),
    maxRestarts: int("RUNNEL_MAX_RESTARTS", 10),
    leaseMs: int("RUNNEL_LEASE_MS", 5000),
    apiTokens: (process.env.RUNNEL_API_TOKENS ?? "").split(",").map((t) => t.trim()).filter(Boolean),
    ...overrides,
  };
}
