/** INSERT INTO t (columns) SELECT ...: values go to the listed columns, the others are NULL; and what is refused. */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planError, runSql, runnelTables, type TableSpec } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

const src: TableSpec = {
  name: "src",
  columns: [
    { name: "k", type: "BIGINT" },
    { name: "s", type: "TEXT" },
  ],
  rows: [
    [1, "a"],
    [2, "b"],
  ],
};

describe("INSERT with a column list", () => {
  test("the query's columns land in the listed columns, in the table's order; unlisted ones are NULL", async () => {
    const dir = mkdtempSync(join(tmpdir(), "runnel-insert-"));
    try {
      const out = join(dir, "out.json");
      await runSql(
        `${runnelTables([src])}
CREATE TABLE out (name TEXT, id BIGINT, note TEXT) WITH (connector = 'single_file', path = '${out}', format = 'json', type = 'sink');
INSERT INTO out (id, name) SELECT k * 10, upper(s) FROM src;`,
      );
      const rows = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
      expect(rows.sort((a, b) => a.id - b.id)).toEqual([
        { name: "A", id: 10, note: null },
        { name: "B", id: 20, note: null },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const refused = async (insert: string, message: RegExp) => {
    const err = await planError(`CREATE TABLE src (k BIGINT, s TEXT) WITH (connector = 'test_rows', dataset = 'none');
CREATE TABLE out (name TEXT, id BIGINT) WITH (connector = 'blackhole');
${insert}`);
    expect(err.message).toMatch(message);
    expect(err.at).toStartWith("out (");
  };

  test("a column the table lacks", () => refused("INSERT INTO out (idd) SELECT k FROM src;", /no column `idd`; did you mean `id`/));
  test("as many columns as the query gives", () => refused("INSERT INTO out (id) SELECT k, s FROM src;", /names 1 column\(s\) \(id\) but the query gives 2/));
  test("a column listed twice", () => refused("INSERT INTO out (id, id) SELECT k, k FROM src;", /`id` is listed twice/));
});

describe("FOR SYSTEM_TIME AS OF a table that is not a lookup table is refused rather than planned as a stream join", () => {
  test("FOR SYSTEM_TIME AS OF", async () => {
    const err = await planError(`CREATE TABLE src (k BIGINT, s TEXT) WITH (connector = 'test_rows', dataset = 'none');
SELECT * FROM src AS a JOIN src FOR SYSTEM_TIME AS OF a.k AS b ON a.k = b.k;`);
    expect(err.message).toMatch(/FOR SYSTEM_TIME AS OF joins a lookup table; declare `src` with type = 'lookup' .* or remove the clause to join it as a stream/);
    expect(err.at).toStartWith("FOR SYSTEM_TIME");
  });
});
