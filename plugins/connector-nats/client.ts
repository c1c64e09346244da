/** Connecting to NATS from the table's options, and saying what went wrong in the user's terms. */
import type { NatsConnection } from "@nats-io/transport-node";
import { importFor, requirePackages } from "../shared/lazy.ts";
import type { ConnectionValues } from "./options.ts";

// The client library loads with the first connection (below); the plugin only checks that it is installed.
requirePackages("connector-nats", import.meta.url, ["@nats-io/transport-node", "@nats-io/jetstream"]);

export function serverList(o: ConnectionValues): string[] {
  return o.servers
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Options that must come together, checked at planning time. */
export function validateConnection(o: ConnectionValues): void {
  if (serverList(o).length === 0) throw new Error("option 'servers' is empty; list the NATS servers as host:port[,host:port...]");
  const need = (option: keyof ConnectionValues, type: string) => {
    if (!o[option]) throw new Error(`auth.type = '${type}' needs option '${option}'`);
  };
  switch (o["auth.type"]) {
    case "credentials":
      need("auth.username", "credentials");
      need("auth.password", "credentials");
      break;
    case "jwt":
      need("auth.jwt", "jwt");
      need("auth.nkey_seed", "jwt");
      break;
    case "token":
      need("auth.token", "token");
      break;
  }
}

export async function connectNats(o: ConnectionValues, name: string): Promise<NatsConnection> {
  const { connect, jwtAuthenticator } = await importFor("connector-nats", () => import("@nats-io/transport-node"));
  const auth =
    o["auth.type"] === "credentials"
      ? { user: o["auth.username"], pass: o["auth.password"] }
      : o["auth.type"] === "token"
        ? { token: o["auth.token"] }
        : o["auth.type"] === "jwt"
          ? { authenticator: jwtAuthenticator(o["auth.jwt"]!, new TextEncoder().encode(o["auth.nkey_seed"]!)) }
          : {};
  try {
    return await connect({
      servers: serverList(o),
      name,
      timeout: Math.round(o.connection_timeout / 1000),
      // Reconnects are the client's business while the job runs; a server gone for long fails the job elsewhere.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      ...auth,
    });
  } catch (err) {
    throw new Error(`cannot connect to NATS at '${o.servers}' (option 'servers'): ${describeError(err)}${o["auth.type"] !== "none" ? "; check the auth.* options" : ""}`);
  }
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
