/**
 * The PostgreSQL sink's options and its connection. The connection is either
 * one `connection_string` or its parts (host, port, database, user,
 * password), so a connection profile can supply them under a table's own
 * options.
 */
import type postgres from "postgres";
import { opt } from "../../core/plugin-api/index.ts";
import { requireFor, requirePackages } from "../shared/lazy.ts";
import type { Sql } from "./table.ts";

requirePackages("connector-postgres", import.meta.url, ["postgres"]);

export const postgresOptions = {
  connection_string: opt.string({
    secret: true,
    description: "postgres://user:password@host:port/database[?sslmode=require]; or give host, port, database, user and password instead",
  }),
  host: opt.string({ description: "Server host name or address (instead of connection_string)" }),
  port: opt.integer({ min: 1, max: 65535, description: "Server port (default 5432)" }),
  database: opt.string({ description: "Database name (default: the user name)" }),
  user: opt.string({ description: "User name" }),
  password: opt.string({ secret: true, description: "Password" }),
  table_name: opt.string({ required: true, description: "The table to write: name or schema.name, read as PostgreSQL reads names (unquoted parts fold to lower case)" }),
  "sink.mode": opt.enum(["append", "upsert"] as const, {
    default: "append",
    description: "append: insert every row; upsert: insert or update by sink.primary_key, delete retracted rows (for updating results such as GROUP BY without a window)",
  }),
  "sink.primary_key": opt.string({ description: "With sink.mode = 'upsert': the key columns, comma-separated; the table needs a primary key or unique index on exactly them" }),
  "sink.create_table": opt.boolean({
    default: false,
    description: "Create the table when it does not exist (columns from the query; the primary key from sink.primary_key). Otherwise a missing table is an error",
  }),
  "sink.id": opt.string({
    description: "Names this sink in the bookkeeping tables runnel_sink_staging and runnel_sink_commits (default <SQL table>:<table_name>); two jobs writing to one table need different ids",
  }),
  "lookup.timeout": opt.duration({
    default: 30_000_000,
    bareUnit: 1e6,
    min: 1_000,
    description: "Lookup tables: a batch's query unanswered after this long fails the job (which restores from its checkpoint); a bare number is seconds",
  }),
  connection_timeout: opt.duration({ default: 10_000_000, bareUnit: 1e6, min: 100_000, description: "How long to wait for a connection (a bare number is seconds)" }),
};

export interface PostgresOptions {
  connection_string?: string;
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  password?: string;
  table_name: string;
  "sink.mode": "append" | "upsert";
  "sink.primary_key"?: string;
  "sink.create_table": boolean;
  "sink.id"?: string;
  "lookup.timeout": number;
  connection_timeout: number;
}

export function primaryKey(o: PostgresOptions): string[] | null {
  if (o["sink.mode"] !== "upsert") return null;
  return (o["sink.primary_key"] ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Where the options point, for messages (never with the password). */
export function describeServer(o: PostgresOptions): string {
  if (o.connection_string) {
    try {
      const u = new URL(o.connection_string);
      return `${u.hostname}:${u.port || 5432}${u.pathname} (option 'connection_string')`;
    } catch {
      return "the server of option 'connection_string'";
    }
  }
  return `${o.host}:${o.port ?? 5432}/${o.database ?? o.user ?? ""} (options 'host', 'port', 'database')`;
}

export function connect(o: PostgresOptions, max = 2): Sql {
  // postgres.js loads with the first connection, not with the plugin; `connect` is synchronous, so through require.
  const postgres = requireFor("connector-postgres", () => require("postgres") as { default: typeof import("postgres") }).default;
  const settings: postgres.Options<{}> = {
    max,
    onnotice: () => {},
    connect_timeout: Math.max(1, Math.round(o.connection_timeout / 1e6)),
  };
  if (o.connection_string) {
    // Parts given beside a connection string override it (a profile may hold the string, the table the database).
    return postgres(o.connection_string, {
      ...settings,
      ...(o.host !== undefined && { host: o.host }),
      ...(o.port !== undefined && { port: o.port }),
      ...(o.database !== undefined && { database: o.database }),
      ...(o.user !== undefined && { username: o.user }),
      ...(o.password !== undefined && { password: o.password }),
    });
  }
  return postgres({ ...settings, host: o.host, port: o.port ?? 5432, database: o.database, username: o.user, password: o.password });
}

/** Turns a connection failure into a message naming the options to fix. */
export function explainConnectionError(err: unknown, o: PostgresOptions): Error {
  const e = err as { code?: string; message?: string };
  const where = describeServer(o);
  const usingString = o.connection_string !== undefined;
  switch (e.code) {
    case "28P01":
    case "28000":
      return new Error(
        `PostgreSQL at ${where} refused the login (${e.message}); check ${usingString ? "the user and password in 'connection_string'" : "options 'user' and 'password'"}`,
      );
    case "3D000":
      return new Error(`${e.message} at ${where}; check ${usingString ? "the database in 'connection_string'" : "option 'database'"}, or create the database`);
    case "ECONNREFUSED":
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "CONNECT_TIMEOUT":
    case "ETIMEDOUT":
      return new Error(`cannot reach PostgreSQL at ${where}: ${e.message ?? e.code}; check the address and that the server runs`);
  }
  return new Error(`PostgreSQL at ${where}: ${e.message ?? String(err)}`);
}
