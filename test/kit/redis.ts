/**
 * The Redis server the tests use, started by scripts/services/redis.sh
 * (RUNNEL_TEST_REDIS, default redis://127.0.0.1:16379), and a client to read
 * back what a sink wrote. Tests use keys under a unique prefix.
 */
import { Redis } from "ioredis";

export const REDIS_URL = process.env.RUNNEL_TEST_REDIS ?? "redis://127.0.0.1:16379";
export const REDIS_OPTS = `address = '${REDIS_URL}'`;

let client: Redis | null = null;

export function redisClient(): Redis {
  client ??= new Redis(REDIS_URL);
  return client;
}

/** Prefixes this process handed out: it cleans up only its own keys (test files in the other shard use the same server). */
const prefixes: string[] = [];

export const uniquePrefix = (name: string) => {
  const prefix = `runnel-test:${name}:${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}:`;
  prefixes.push(prefix);
  return prefix;
};

export async function closeRedisKit(): Promise<void> {
  if (!client) return;
  for (const prefix of prefixes.splice(0)) {
    const keys = await client.keys(`${prefix}*`);
    if (keys.length > 0) await client.del(...keys);
  }
  client.disconnect();
  client = null;
}
