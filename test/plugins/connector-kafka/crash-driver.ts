/**
 * The exactly-once crash scenario, shared by the CI test and `bun run soak:kafka`:
 * a keyed topic is written continuously while a Kafka → transform → Kafka
 * (exactly_once) job is killed with SIGKILL at random moments and, every few
 * rounds, at the `sink-before-commit` crash point (checkpoint complete, sink
 * not yet committed); then a last run drains the input. A read_committed
 * reader must see every expected output record exactly once, in input order
 * per key (and each key in one partition).
 */
import { join } from "node:path";
import { Partitioners } from "kafkajs";
import { startCli, tempDir, writeSql } from "../../kit/cli.ts";
import { createTopic, KAFKA_OPTS, readAll, startJob, testKafka, waitUntil } from "../../kit/kafka.ts";

export interface CrashOptions {
  kills: number;
  /** Every n-th kill happens at the sink-before-commit crash point. */
  crashPointEvery?: number;
  parallelism?: number;
  seed?: number;
  /** Input records written per second while the job is being killed. */
  rate?: number;
  log?: (line: string) => void;
}

export interface CrashReport {
  kills: number;
  crashPointKills: number;
  inputRecords: number;
  expectedOutput: number;
  /** Problems found; empty when the output is exactly right. */
  problems: string[];
}

const USERS = 40;

export async function runCrashScenario(o: CrashOptions): Promise<CrashReport> {
  const log = o.log ?? (() => {});
  const parallelism = o.parallelism ?? 2;
  let seed = o.seed ?? 42;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const input = await createTopic("crash-in", 4);
  const output = await createTopic("crash-out", 3);
  const dir = tempDir("runnel-kafka-crash-");
  const sql = writeSql(
    dir,
    `CREATE TABLE events (user TEXT, seq BIGINT, v BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${input}', type = 'source', format = 'json',
  'source.offset' = 'earliest', 'source.read_mode' = 'read_committed');
CREATE TABLE results (user TEXT, seq BIGINT, doubled BIGINT) WITH (connector = 'kafka', ${KAFKA_OPTS}, topic = '${output}', type = 'sink', format = 'json',
  'sink.commit_mode' = 'exactly_once', 'sink.key_field' = 'user');
INSERT INTO results SELECT user, seq, v * 2 AS doubled FROM events WHERE v % 4 <> 0;`,
  );
  const args = [sql, "--state-dir", join(dir, "state"), "--checkpoint-interval", "300ms", "--parallelism", String(parallelism), "--quiet"];

  // The input keeps coming while the job is killed and restarted.
  const producer = testKafka("crash-input").producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const seqs = new Array(USERS).fill(0);
  let written = 0;
  let producing = true;
  const rate = o.rate ?? 2000;
  const feeder = (async () => {
    while (producing) {
      const messages = [];
      for (let i = 0; i < rate / 10; i++) {
        const u = written % USERS;
        const v = written;
        messages.push({ key: `u${u}`, value: JSON.stringify({ user: `u${u}`, seq: seqs[u]++, v }) });
        written++;
      }
      await producer.send({ topic: input, messages, acks: -1 });
      await Bun.sleep(100);
    }
  })();

  const crashEvery = o.crashPointEvery ?? 5;
  let crashPointKills = 0;
  for (let i = 0; i < o.kills; i++) {
    if (i % crashEvery === crashEvery - 1) {
      const nth = 1 + Math.floor(random() * 4);
      const proc = startCli(["run", ...args], undefined, { RUNNEL_CRASH_AT: `sink-before-commit:${nth}` });
      const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
      await proc.exited;
      clearTimeout(timer);
      if (proc.signalCode !== "SIGKILL") throw new Error(`run ${i} (crash point) ended with ${proc.exitCode ?? proc.signalCode}, not at the crash point: ${await new Response(proc.stderr).text()}`);
      crashPointKills++;
      log(`kill ${i + 1}/${o.kills}: at sink-before-commit #${nth}`);
    } else {
      const delay = 300 + Math.floor(random() * 2200);
      const proc = startCli(["run", ...args]);
      await Bun.sleep(delay);
      const alive = proc.exitCode === null;
      proc.kill("SIGKILL");
      await proc.exited;
      if (!alive) throw new Error(`run ${i} exited by itself (${proc.exitCode}) before its kill: ${await new Response(proc.stderr).text()}`);
      log(`kill ${i + 1}/${o.kills}: after ${delay} ms`);
    }
  }
  producing = false;
  await feeder;
  await producer.disconnect();

  const expected = new Map<string, number[]>();
  let expectedOutput = 0;
  for (let v = 0; v < written; v++) {
    if (v % 4 === 0) continue;
    const user = `u${v % USERS}`;
    let list = expected.get(user);
    if (!list) expected.set(user, (list = []));
    list.push(Math.floor(v / USERS));
    expectedOutput++;
  }
  log(`input ${written} records; draining`);
  const last = startJob(args);
  // Wait until everything is there, or nothing more has come for 15 s (then the check below says what is missing).
  let seen = -1;
  let since = Date.now();
  await waitUntil(
    "the last run to write everything",
    async () => {
      const n = (await readAll(output, true)).length;
      if (n !== seen) [seen, since] = [n, Date.now()];
      return n >= expectedOutput || Date.now() - since > 15_000;
    },
    300_000,
    500,
  );
  await Bun.sleep(1000);
  const code = await last.stop();

  const problems: string[] = [];
  if (code !== 0) problems.push(`the last run exited with ${code}: ${last.stderr()}`);
  const records = await readAll(output, true);
  if (records.length !== expectedOutput) problems.push(`read_committed sees ${records.length} records, expected ${expectedOutput}`);
  const got = new Map<string, { partition: number; seqs: number[] }>();
  for (const r of records) {
    const value = JSON.parse(r.value) as { user: string; seq: number; doubled: number };
    let entry = got.get(value.user);
    if (!entry) got.set(value.user, (entry = { partition: r.partition, seqs: [] }));
    if (entry.partition !== r.partition) problems.push(`key ${value.user} is in partitions ${entry.partition} and ${r.partition}`);
    if (r.key !== value.user) problems.push(`record key ${r.key} for user ${value.user}`);
    const v = value.seq * USERS + Number(value.user.slice(1));
    if (value.doubled !== v * 2) problems.push(`user ${value.user} seq ${value.seq}: doubled ${value.doubled}, expected ${v * 2}`);
    entry.seqs.push(value.seq);
  }
  for (const [user, seqList] of expected) {
    const g = got.get(user)?.seqs ?? [];
    if (g.length !== seqList.length || g.some((s, i) => s !== seqList[i])) {
      const dup = g.length - new Set(g).size;
      problems.push(`user ${user}: ${g.length} records (${dup} duplicates), expected ${seqList.length} in order`);
    }
  }
  return { kills: o.kills, crashPointKills, inputRecords: written, expectedOutput, problems: problems.slice(0, 20) };
}
