/** Connecting to RabbitMQ from the table's options (amqplib), with errors in the user's terms. */
import type { ChannelModel } from "amqplib";
import { readOptionFile } from "../shared/files.ts";
import { importFor, requirePackages } from "../shared/lazy.ts";
import type { ConnectionValues } from "./options.ts";

// The client library loads with the first connection (below); the plugin only checks that it is installed.
requirePackages("connector-rabbitmq", import.meta.url, ["amqplib"]);

export const where = (o: ConnectionValues) => `${o.host}:${o.port ?? (o["tls_config.enabled"] ? 5671 : 5672)} (vhost '${o.virtual_host}')`;

export async function connectRabbit(o: ConnectionValues, name: string): Promise<ChannelModel> {
  const tls = o["tls_config.enabled"];
  const { default: amqp } = await importFor("connector-rabbitmq", () => import("amqplib"));
  try {
    return await amqp.connect(
      {
        protocol: tls ? "amqps" : "amqp",
        hostname: o.host,
        port: o.port ?? (tls ? 5671 : 5672),
        username: o.username,
        password: o.password,
        vhost: o.virtual_host,
        heartbeat: 30,
      },
      {
        clientProperties: { connection_name: name },
        timeout: 10_000,
        ...(tls
          ? {
              ca: readOptionFile(o["tls_config.root_certificates_path"], "tls_config.root_certificates_path"),
              cert: readOptionFile(o["tls_config.client_certificates_path"], "tls_config.client_certificates_path"),
              key: readOptionFile(o["tls_config.client_keys_path"], "tls_config.client_keys_path"),
              rejectUnauthorized: !o["tls_config.trust_certificates"],
            }
          : {}),
      },
    );
  } catch (err) {
    const msg = describeError(err);
    const hint = /ACCESS_REFUSED|403|auth/i.test(msg)
      ? "check options 'username' and 'password'"
      : /vhost|NOT_ALLOWED|530/i.test(msg)
        ? "check option 'virtual_host'"
        : "check options 'host' and 'port' and that the broker runs";
    throw new Error(`cannot connect to RabbitMQ at ${where(o)}: ${msg}; ${hint}`);
  }
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string | number }).code;
    return code !== undefined && !err.message.includes(String(code)) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
