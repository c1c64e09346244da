/** What every service needs: the database, the plugin registry, the event bus and the settings. */
import type { Database, Db } from "../db/connect.ts";
import type { PluginRegistry } from "../../core/registry/registry.ts";
import type { EventBus } from "./events.ts";

export interface Settings {
  port: number;
  dataDir: string;
  /** Root of the job state directories (checkpoints). */
  checkpointDir: string;
  /** This process's name among control planes sharing a database. */
  instanceId: string;
  heartbeatMs: number;
  /** A worker silent for this long is taken for dead. */
  heartbeatTimeoutMs: number;
  maxRestarts: number;
  /** How long a control plane's claim on a job lasts without renewal. */
  leaseMs: number;
  apiTokens: string[];
}

export interface Services {
  database: Database;
  db: Db;
  registry: PluginRegistry;
  events: EventBus;
  settings: Settings;
}
