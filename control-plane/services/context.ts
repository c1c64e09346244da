/** What every service needs: the database, the plugin registry, the event bus, the settings and the secret box. */
import type { Database, Db } from "../db/connect.ts";
import type { PluginRegistry } from "../../core/registry/registry.ts";
import type { EventBus } from "./events.ts";
import type { SecretBox } from "../security/secret-box.ts";
import type { Sandbox } from "../jobs/sandbox.ts";

export interface Settings {
  port: number;
  /** The address to listen on (RUNNEL_HOST): loopback unless told otherwise. */
  host: string;
  /** RUNNEL_ALLOW_UNAUTHENTICATED=1: listen beyond loopback without API tokens (warned at every start). */
  allowUnauthenticated: boolean;
  /** Origins whose pages may call the API (RUNNEL_CORS_ORIGINS); none: only pages the control plane serves itself. */
  corsOrigins: string[];
  /** Largest request body (RUNNEL_MAX_BODY_BYTES), and largest pipeline SQL (RUNNEL_MAX_SQL_BYTES). */
  maxBodyBytes: number;
  maxSqlBytes: number;
  dataDir: string;
  /** Root of the job state directories (checkpoints). */
  checkpointDir: string;
  /** This process's name among control planes sharing a database. */
  instanceId: string;
  heartbeatMs: number;
  /** A worker silent for this long is taken for dead (longer while it is visibly busy, see the supervisor). */
  heartbeatTimeoutMs: number;
  maxRestarts: number;
  /** How long a control plane's claim on a job lasts without renewal. */
  leaseMs: number;
  /** RUNNEL_API_TOKENS: `token` (admin) or `role:token` entries. */
  apiTokens: string[];
  /** Directories pipelines may read and write local files in (RUNNEL_FILE_ROOTS). */
  fileRoots: string[];
  /** Variables `{{ VAR }}` may name besides RUNNEL_SECRET_* (RUNNEL_ENV_ALLOWLIST; `PREFIX_*` allows a prefix). */
  envAllowlist: string[];
  /** Variables of this process passed on to workers as they are (RUNNEL_WORKER_ENV; `PREFIX_*` allows a prefix). */
  workerEnv: string[];
  /** Command put before the worker's (RUNNEL_WORKER_WRAPPER), e.g. to run it as another user. */
  workerWrapper: string[];
  /** Workers this control plane runs at once (RUNNEL_MAX_WORKERS); more jobs wait in Scheduling. */
  maxWorkers: number;
  /** Worker processes one job may spread over (RUNNEL_JOB_WORKERS, default the cores); a job uses min(its parallelism, this). */
  jobWorkers: number;
  /** The scheduler plugin that starts a job's worker processes (RUNNEL_SCHEDULER: process, kubernetes, external). */
  scheduler: string;
  /** SQL validation and UDF checks run in child processes: at most this many at once, each bounded in time and memory. */
  maxValidations: number;
  validationTimeoutMs: number;
  validationMemoryMb: number;
  /** RUNNEL_SECRET_KEY (base64, 32 bytes) and RUNNEL_SECRET_KEY_PREVIOUS; else a key file in the data directory. */
  secretKey?: string;
  previousSecretKey?: string;
}

export interface Services {
  database: Database;
  db: Db;
  registry: PluginRegistry;
  events: EventBus;
  settings: Settings;
  secrets: SecretBox;
  sandbox: Sandbox;
}
