/** `runnel run` as a user meets it: graph, progress, preview rows, exit codes, bad data. */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, startCli, tempDir, writeSql } from "../../kit/cli.ts";

setDefaultTimeout(120_000);

const jsonLines = (text: string) => text.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));

describe("runnel run", () => {
  test("a bounded impulse pipeline prints the graph, writes the SELECT's rows to stdout and exits 0", async () => {
    const dir = tempDir();
    const sql = writeSql(
      dir,
      `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100000', message_count = '50');
       SELECT counter, counter * 2 AS doubled FROM impulse WHERE counter % 10 = 0;`,
    );
    const res = await runCli(["run", sql]);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain("dataflow graph:");
    expect(res.stderr).toContain("source impulse (impulse)");
    expect(res.stderr).toContain("finished: input exhausted");
    expect(jsonLines(res.stdout)).toEqual([0, 10, 20, 30, 40].map((c) => ({ counter: c, doubled: c * 2 })));
  });

  test("parallelism runs a subtask per operator instance, with a hash shuffle before the aggregate", async () => {
    const dir = tempDir();
    const sql = writeSql(
      dir,
      `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '1000000', message_count = '1000', event_time_interval = '1ms', start_time = '2024-01-01T00:00:00Z');
       SELECT tumble(INTERVAL '1' SECOND) AS window, subtask_index, count(*) AS n FROM impulse GROUP BY window, subtask_index;`,
    );
    const res = await runCli(["run", sql, "--parallelism", "3"]);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain("×3");
    expect(res.stderr).toContain("hash shuffle");
    const rows = jsonLines(res.stdout);
    expect(rows.map((r) => r.subtask_index).sort()).toEqual([0, 1, 2]);
    expect(rows.every((r) => r.n === 1000 && r.window.start === "2024-01-01T00:00:00Z")).toBe(true);
  });

  test("GROUP BY without a window previews Debezium-style changes", async () => {
    const dir = tempDir();
    const sql = writeSql(
      dir,
      `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '1000000', message_count = '6');
       SELECT counter % 2 AS parity, count(*) AS n FROM impulse GROUP BY counter % 2;`,
    );
    const res = await runCli(["run", sql]);
    expect(res.code).toBe(0);
    const changes = jsonLines(res.stdout);
    expect(changes.every((c) => ["c", "u", "d"].includes(c.op))).toBe(true);
    // Replaying the changes gives the final counts.
    const table = new Map<number, number>();
    for (const c of changes) {
      if (c.op === "d") table.delete(c.before.parity);
      else {
        if (c.op === "u") expect(c.before.parity).toBe(c.after.parity);
        table.set(c.after.parity, c.after.n);
      }
    }
    expect([...table].sort()).toEqual([
      [0, 3],
      [1, 3],
    ]);
  });

  test("nexmark with a runtime is bounded", async () => {
    const dir = tempDir();
    const sql = writeSql(
      dir,
      `CREATE TABLE nexmark WITH (connector = 'nexmark', event_rate = '5000', runtime = '1s');
       SELECT count(*) AS events, count(bid) AS bids, count(person) AS people, count(auction) AS auctions FROM nexmark;`,
    );
    const res = await runCli(["run", sql]);
    expect(res.code).toBe(0);
    const last = jsonLines(res.stdout).at(-1).after;
    expect(last).toEqual({ events: 5000, bids: 4600, people: 100, auctions: 300 });
  });

  test("bad records: dropped and counted by default, or the job stops naming the record under bad_data = 'fail'", async () => {
    const dir = tempDir();
    const input = join(dir, "in.jsonl");
    writeFileSync(input, ['{"id": 1, "name": "a"}', '{"id": "x", "name": "b"}', "not json", '{"id": 4, "name": "d"}'].join("\n") + "\n");
    const table = (badData: string) => `CREATE TABLE src (id BIGINT, name TEXT) WITH (connector = 'single_file', path = '${input}', format = 'json', type = 'source'${badData});
      SELECT id, name FROM src;`;
    const dropped = await runCli(["run", writeSql(dir, table(""), "drop.sql")]);
    expect(dropped.code).toBe(0);
    expect(jsonLines(dropped.stdout).map((r) => r.id)).toEqual([1, 4]);
    expect(dropped.stderr).toContain("dropped bad record");

    const failed = await runCli(["run", writeSql(dir, table(", bad_data = 'fail'"), "fail.sql")]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`bad record in source 'src' at ${input}:2`);
    expect(failed.stderr).toContain("bad_data = 'drop'");
    expect(failed.stderr).not.toMatch(/\n\s+at /); // no stack trace
  });

  test("SQL errors name line and column, without a stack trace, exit 2", async () => {
    const dir = tempDir();
    const sql = writeSql(dir, `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '10');\nSELECT countr FROM impulse;`);
    const res = await runCli(["run", sql]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("error at line 2, column 8: unknown column `countr` in `impulse`; did you mean `counter`?");
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });

  test("progress on stderr while it runs; SIGINT takes a final checkpoint and stops", async () => {
    const dir = tempDir();
    const sql = writeSql(dir, `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '2000');\nCREATE TABLE sink WITH (connector = 'blackhole');\nINSERT INTO sink SELECT * FROM impulse;`);
    const proc = startCli(["run", sql, "--state-dir", join(dir, "state"), "--checkpoint-interval", "500ms"]);
    await Bun.sleep(2500);
    proc.kill("SIGINT");
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(0);
    expect(stderr).toMatch(/0-source in=\d+ out=\d+ wm=2/);
    expect(stderr).toMatch(/checkpoint/);
    expect(stderr).toContain("stopped at checkpoint");
  });
});
