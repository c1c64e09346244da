/**
 * Replaces kafkajs 2.2.4's `groupMessagesPerPartition`, which copies a
 * partition's whole array for every message it adds (quadratic in the batch
 * size: two thirds of the sink's CPU time in `bun run bench:kafka`), with a
 * linear version. It has to be in place before kafkajs loads, because
 * kafkajs's sendMessages keeps the function it required; so client.ts imports
 * this module before kafkajs. If kafkajs was loaded earlier in the process the
 * original stays (correct, only slower).
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function groupMessagesPerPartition({ topic, partitionMetadata, messages, partitioner }: {
  topic: string;
  partitionMetadata: unknown[];
  messages: unknown[];
  partitioner: (args: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;
}): Record<number, unknown[]> {
  const result: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (result[partition] ??= []).push(message);
  }
  return result;
}

export const kafkajsGroupingPatched = (() => {
  try {
    const path = require.resolve("kafkajs/src/producer/groupMessagesPerPartition.js");
    const sendMessages = require.resolve("kafkajs/src/producer/sendMessages.js");
    if (require.cache[sendMessages]) return false;
    const existing = require.cache[path];
    if (existing) {
      existing.exports = groupMessagesPerPartition;
      return true;
    }
    require(path);
    require.cache[path]!.exports = groupMessagesPerPartition;
    return true;
  } catch {
    return false;
  }
})();
