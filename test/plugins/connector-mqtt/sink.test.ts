/**
 * The MQTT sink against Mosquitto: QoS 1 through kill -9 delivers every row at
 * least once to a subscriber; `sink.retain` leaves the last row for a later
 * subscriber; a wildcard topic is refused naming the option.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { closeMqttKit, collector, MQTT_OPTS, mqttClient, uniqueTopic } from "../../kit/mqtt.ts";
import { sinkUnderKills } from "../../kit/sink-crash.ts";

setDefaultTimeout(60_000);
afterAll(closeMqttKit);

function boundedJob(dir: string, sinkOptions: string, count: number) {
  return writeSql(
    dir,
    `CREATE TABLE imp WITH (connector = 'impulse', event_rate = '0', message_count = '${count}');
CREATE TABLE out (id BIGINT, v TEXT) WITH (connector = 'mqtt', ${MQTT_OPTS}, ${sinkOptions}, type = 'sink', format = 'json');
INSERT INTO out SELECT CAST(counter AS BIGINT) AS id, CONCAT('v', CAST(counter AS TEXT)) AS v FROM imp;`,
  );
}

describe("mqtt sink", () => {
  test("QoS 1, kill -9 three times: a subscriber gets every row at least once", async () => {
    const topic = uniqueTopic("sink-crash");
    const sub = await collector(topic, 1);
    const report = await sinkUnderKills({
      sinkOptions: `connector = 'mqtt', ${MQTT_OPTS}, topic = '${topic}', qos = 'AtLeastOnce', format = 'json'`,
      readIds: async () => sub.messages.map((m) => JSON.parse(m).id),
    });
    expect(report.missing).toEqual([]);
  });

  test("QoS 2 with 'sink.retain': every row arrives, and a later subscriber gets the last one", async () => {
    const topic = uniqueTopic("sink-retain");
    const sub = await collector(topic, 2);
    const dir = tempDir("runnel-mqtt-sink-");
    const r = await runCli(["run", boundedJob(dir, `topic = '${topic}', qos = 'ExactlyOnce', 'sink.retain' = 'true'`, 200), "--state-dir", join(dir, "state"), "--quiet"]);
    expect(r.code).toBe(0);
    expect(sub.messages.map((m) => JSON.parse(m).id)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    const late = await mqttClient();
    const retained = await new Promise<string>((resolve) => {
      late.on("message", (_t, payload) => resolve(payload.toString()));
      void late.subscribeAsync(topic, { qos: 1 });
    });
    expect(JSON.parse(retained)).toEqual({ id: 199, v: "v199" });
    await late.publishAsync(topic, "", { qos: 1, retain: true }); // clears the retained message
  });

  test("a wildcard topic is refused naming 'topic'", async () => {
    const dir = tempDir("runnel-mqtt-sink-refuse-");
    const r = await runCli(["run", boundedJob(dir, "topic = 'a/+/b'", 5), "--quiet"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("option 'topic'");
  });
});
