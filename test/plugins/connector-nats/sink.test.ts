/**
 * The NATS sink against a real nats-server: a subject captured by a JetStream
 * stream gets every row at least once through kill -9 (publish
 * acknowledgements awaited at each checkpoint); a NATS Core subject reaches a
 * live subscriber; a missing subject is refused naming the option.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { closeNatsKit, createStream, NATS_OPTS, natsConnection, readStream } from "../../kit/nats.ts";
import { sinkUnderKills } from "../../kit/sink-crash.ts";

setDefaultTimeout(60_000);
afterAll(closeNatsKit);

describe("nats sink", () => {
  test("JetStream subject, kill -9 three times: every row is in the stream at least once", async () => {
    const stream = await createStream("sink_crash");
    const report = await sinkUnderKills({
      sinkOptions: `connector = 'nats', ${NATS_OPTS}, subject = '${stream}.out', format = 'json'`,
      readIds: async () => (await readStream(stream)).map((m) => JSON.parse(m.data).id),
    });
    expect(report.missing).toEqual([]);
  });

  test("NATS Core subject: a subscriber gets every row of a bounded job", async () => {
    const subject = `core_sink_${Date.now().toString(36)}`;
    const nc = await natsConnection();
    const got: { id: number; v: string }[] = [];
    const sub = nc.subscribe(subject, { callback: (_e, m) => void got.push(m.json()) });
    await nc.flush();
    const dir = tempDir("runnel-nats-core-sink-");
    const sql = writeSql(
      dir,
      `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '0', message_count = '500');
CREATE TABLE out (id BIGINT, v TEXT) WITH (connector = 'nats', ${NATS_OPTS}, subject = '${subject}', type = 'sink', format = 'json');
INSERT INTO out SELECT CAST(counter AS BIGINT) AS id, CONCAT('v', CAST(counter AS TEXT)) AS v FROM imp;`,
    );
    const r = await runCli(["run", sql, "--state-dir", join(dir, "state"), "--quiet"]);
    expect(r.code).toBe(0);
    await nc.flush();
    sub.unsubscribe();
    expect(got.map((g) => g.id)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    expect(got[7]!.v).toBe("v7");
  });

  test("a sink without 'subject' is refused naming the option", async () => {
    const dir = tempDir("runnel-nats-sink-refuse-");
    const sql = writeSql(
      dir,
      `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '0', message_count = '5');
CREATE TABLE out (id BIGINT) WITH (connector = 'nats', ${NATS_OPTS}, type = 'sink', format = 'json');
INSERT INTO out SELECT CAST(counter AS BIGINT) AS id FROM imp;`,
    );
    const r = await runCli(["run", sql, "--quiet"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("option 'subject'");
  });
});
