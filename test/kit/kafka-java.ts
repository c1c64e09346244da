/**
 * Reads a topic as Apache Kafka's Java consumer does with read_committed
 * (test/kit/KafkaReadCommitted.java): the exactly-once checker that shares no
 * code with Runnel or kafkajs. Uses the jars scripts/services/kafka.sh installed.
 */
import { join } from "node:path";
import { KAFKA, type ReadRecord } from "./kafka.ts";

const LIBS = join(process.env.RUNNEL_CACHE ?? join(process.env.HOME ?? "/root", ".cache", "runnel"), `kafka-${process.env.RUNNEL_KAFKA_VERSION ?? "3.9.1"}`, "libs");

/** Every committed record of `topic` up to its last stable offsets, per partition in offset order. */
export async function readCommittedJava(topic: string): Promise<Omit<ReadRecord, "timestamp">[]> {
  const proc = Bun.spawn(["java", "-cp", `${LIBS}/*`, "-Dlog4j.configuration=file:/dev/null", join(import.meta.dir, "KafkaReadCommitted.java"), KAFKA, topic], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`the Java read_committed reader failed (${code}): ${err.slice(-2000)}`);
  return out.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}
