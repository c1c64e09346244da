/** Connecting to Redis from the table's options (ioredis), with errors in the user's terms. */
import type { Redis } from "ioredis";
import { importFor, requirePackages } from "../shared/lazy.ts";
import type { ConnectionValues } from "./options.ts";

// The client library loads with the first connection (below); the plugin only checks that it is installed.
requirePackages("connector-redis", import.meta.url, ["ioredis"]);

export function checkAddress(o: ConnectionValues): URL {
  let url: URL;
  try {
    url = new URL(o.address);
  } catch {
    throw new Error(`option 'address': '${o.address}' is not a URL; write it like redis://host:6379`);
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") throw new Error(`option 'address': use redis:// or rediss://, not ${url.protocol}//`);
  return url;
}

export async function connectRedis(o: ConnectionValues, name: string): Promise<Redis> {
  checkAddress(o);
  const { Redis } = await importFor("connector-redis", () => import("ioredis"));
  const redis = new Redis(o.address, {
    ...(o.username ? { username: o.username } : {}),
    ...(o.password ? { password: o.password } : {}),
    connectionName: name,
    lazyConnect: true,
    connectTimeout: 10_000,
    // Commands wait through short reconnects; a server gone for long fails the job.
    maxRetriesPerRequest: 20,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
  });
  redis.on("error", () => {}); // reported through the commands that fail
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    const msg = describeError(err);
    const hint = /NOAUTH|WRONGPASS|auth/i.test(msg) ? "check options 'username' and 'password'" : "check option 'address' and that the server runs";
    throw new Error(`cannot connect to Redis at '${redact(o.address)}': ${msg}; ${hint}`);
  }
  return redis;
}

/** The address without a password it may carry. */
export function redact(address: string): string {
  try {
    const u = new URL(address);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return address;
  }
}

export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
