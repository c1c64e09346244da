/**
 * Exactly-once end to end under kill -9: 22 kills of a Kafka → Kafka
 * exactly_once job (4 of them between checkpoint completion and the sink's
 * commit), with input arriving all along; a read_committed reader then sees
 * every expected record once, in order per key. `bun run soak:kafka N` runs
 * the same scenario with N kills.
 */
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { closeKafkaKit } from "../../kit/kafka.ts";
import { runCrashScenario } from "./crash-driver.ts";

setDefaultTimeout(300_000);
afterAll(closeKafkaKit);

test("22 kill -9 (4 at sink-before-commit): a read_committed reader sees every output exactly once, in order per key", async () => {
  const report = await runCrashScenario({ kills: 22, crashPointEvery: 5, parallelism: 2, seed: 20261129 });
  expect(report.crashPointKills).toBe(4);
  expect(report.inputRecords).toBeGreaterThan(10_000);
  expect(report.problems).toEqual([]);
});
