/** The SQL front end: what it accepts, what it plans, and how it explains mistakes. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { PlanNode } from "../../../core/plan/logical.ts";
import { formatSqlError, planSql, SqlError } from "../../../core/sql/index.ts";
import { REPO } from "../../kit/cli.ts";
import { fixtureRegistry } from "../../kit/fixture-registry.ts";

const registry = fixtureRegistry();
const plan = (sql: string) => planSql(sql, registry);

function planError(sql: string): { message: string; formatted: string; line: number; column: number } {
  try {
    plan(sql);
  } catch (err) {
    if (!(err instanceof SqlError)) throw err;
    const pos = err.position(sql);
    return { message: err.message, formatted: formatSqlError(err, sql), line: pos?.line ?? 0, column: pos?.column ?? 0 };
  }
  throw new Error("expected a SQL error");
}

const EVENTS = `CREATE TABLE events (user_id TEXT, value BIGINT, ts TIMESTAMP, WATERMARK FOR ts)
WITH (connector = 'single_file', path = '/tmp/in.jsonl', format = 'json', type = 'source');
`;

function kinds(node: PlanNode): string[] {
  const inputs = node.kind === "source" ? [] : node.kind === "union" ? node.inputs : node.kind === "join" ? [node.left, node.right] : [node.input];
  return [node.kind, ...inputs.flatMap(kinds)];
}

describe("the seed's SQL", () => {
  test("every statement of the Arroyo 0.5 announcement plans as written", () => {
    const seed = readFileSync(join(REPO, "examples", "arroyo-0.5.sql"), "utf8");
    // The session-window example reads `clickstream`, "any source table with user_id".
    const clickstream = `CREATE TABLE clickstream (user_id TEXT, ts TIMESTAMP, WATERMARK FOR ts)
      WITH (connector = 'kafka', topic = 'clicks', bootstrap_servers = 'localhost:9092', type = 'source', format = 'json');\n`;
    const p = plan(clickstream + seed);
    expect(p.sinks.length).toBe(3);
    expect(p.sinks[0]!.table!.name).toBe("kinesis_sink");
    const session = p.sinks[1]!.input;
    expect(session.schema.fields.map((f) => f.name)).toEqual(["window", "user_id", "count"]);
    expect(kinds(session)).toEqual(["map", "window_aggregate", "source"]);
    const impulse = p.sinks[2]!.input;
    expect(impulse.schema.fields.map((f) => f.name)).toEqual(["subtask_index"]);
    const kafka = [...planSql(clickstream + seed, registry).tables.values()].find((t) => t.name === "clickstream")!;
    expect(kafka.options["sink.commit_mode"]).toBe("at_least_once");
  });

  test("quoted option keys reach the connector", () => {
    const p = plan(`CREATE TABLE kafka_sink (user_id TEXT, count INT) WITH (connector ='kafka', topic = 'results',
      bootstrap_servers = 'localhost:9092', type = 'sink', format = 'json', 'sink.commit_mode' = 'exactly_once');
      CREATE TABLE src (user_id TEXT, n INT) WITH (connector = 'kafka', topic = 'in', bootstrap_servers = 'x:1', type = 'source', format = 'json');
      INSERT INTO kafka_sink SELECT user_id, n FROM src;`);
    expect(p.sinks[0]!.table!.options["sink.commit_mode"]).toBe("exactly_once");
  });
});

describe("names the grammar reserves", () => {
  test("columns named time, count, timestamp, window, end, offset, partition, json", () => {
    const p = plan(`CREATE TABLE t (time TIMESTAMP, count INT, timestamp TIMESTAMP, "window" TEXT, "end" BIGINT, "offset" BIGINT, "partition" INT, "json" JSON)
      WITH (connector = 'single_file', path = '/x', format = 'json');
      SELECT time, count, timestamp, window, end, offset, partition, json, CASE WHEN count > 1 THEN 'many' END AS label FROM t WHERE offset > 5 AND partition = 1;`);
    expect(p.sinks[0]!.input.schema.fields.map((f) => f.name)).toEqual(["time", "count", "timestamp", "window", "end", "offset", "partition", "json", "label"]);
  });

  test("intervals written both ways", () => {
    const a = plan(EVENTS + "SELECT tumble(INTERVAL '1 hour') AS window, count(*) FROM events GROUP BY window;");
    const b = plan(EVENTS + "SELECT tumble(INTERVAL '1' HOUR) AS window, count(*) FROM events GROUP BY window;");
    const width = (p: ReturnType<typeof plan>) => (p.sinks[0]!.input as any).input.window.width;
    expect(width(a)).toBe(3_600_000_000);
    expect(width(b)).toBe(3_600_000_000);
    for (const [text, micros] of [["'250' MILLISECOND", 250_000], ["'2' WEEKS", 14 * 86_400e6], ["'5' MICROSECONDS", 5]] as const) {
      const p = plan(EVENTS + `SELECT tumble(INTERVAL ${text}) AS window, count(*) FROM events GROUP BY window;`);
      expect(width(p)).toBe(micros);
    }
  });
});

describe("queries", () => {
  test("windows: tumble, hop and session, with window.start and window.end outside", () => {
    for (const [w, kind] of [
      ["tumble(INTERVAL '10' SECOND)", "tumble"],
      ["hop(INTERVAL '2' SECOND, INTERVAL '10' SECOND)", "hop"],
      ["session(INTERVAL '30' SECOND)", "session"],
    ] as const) {
      const p = plan(EVENTS + `SELECT window.start AS s, window.end AS e, user_id, n FROM (
        SELECT ${w} AS window, user_id, count(*) AS n FROM events GROUP BY window, user_id);`);
      // The outer projection and the aggregate's own are one map (fused).
      const agg = (p.sinks[0]!.input as any).input;
      expect(agg.kind).toBe("window_aggregate");
      expect(agg.window.kind).toBe(kind);
      expect(p.sinks[0]!.input.schema.fields.map((f) => [f.name, f.type.kind])).toEqual([
        ["s", "timestamp"],
        ["e", "timestamp"],
        ["user_id", "string"],
        ["n", "int"],
      ]);
    }
  });

  test("GROUP BY without a window gives an updating result", () => {
    const p = plan(EVENTS + "SELECT user_id, count(*) AS n, sum(value) AS total FROM events GROUP BY user_id HAVING count(*) > 1;");
    expect(p.sinks[0]!.input.updating).toBe(true);
    expect(kinds(p.sinks[0]!.input)).toEqual(["map", "updating_aggregate", "source"]);
  });

  test("an updating result needs a sink format that writes updates", () => {
    const e = planError(EVENTS + `CREATE TABLE out WITH (connector = 'single_file', path = '/o', format = 'json', type = 'sink');
INSERT INTO out SELECT user_id, count(*) FROM events GROUP BY user_id;`);
    expect(e.message).toContain("debezium_json");
    const ok = plan(EVENTS + `CREATE TABLE out WITH (connector = 'single_file', path = '/o', format = 'debezium_json', type = 'sink');
INSERT INTO out SELECT user_id, count(*) FROM events GROUP BY user_id;`);
    expect(ok.sinks[0]!.table!.fields.map((f) => f.name)).toEqual(["user_id", "count"]);
  });

  test("CTEs, subqueries, UNION ALL, views and in-memory tables", () => {
    const p = plan(EVENTS + `
      CREATE VIEW big AS SELECT user_id, value FROM events WHERE value > 100;
      CREATE TABLE staged (user_id TEXT, value BIGINT);
      INSERT INTO staged SELECT user_id, value FROM big;
      INSERT INTO staged SELECT user_id, value * 2 FROM events WHERE user_id IN ('a', 'b');
      WITH c AS (SELECT user_id, value FROM staged)
      SELECT x.user_id FROM (SELECT user_id FROM c WHERE value BETWEEN 1 AND 10) x
      UNION ALL SELECT user_id FROM big;`);
    expect(p.sinks.length).toBe(1);
    // One source node shared by every reader of `events`.
    const sources = new Set<PlanNode>();
    const visit = (n: PlanNode) => {
      if (n.kind === "source") sources.add(n);
      else if (n.kind === "union") n.inputs.forEach(visit);
      else if (n.kind === "join") [n.left, n.right].forEach(visit);
      else visit(n.input);
    };
    visit(p.sinks[0]!.input);
    expect(sources.size).toBe(1);
  });

  test("struct fields, CASE, CAST, LIKE, IS NULL, JSON operators and functions type-check", () => {
    const p = plan(`CREATE TABLE n WITH (connector = 'nexmark');
      SELECT bid.price * 2 AS doubled, CAST(bid.price AS DOUBLE) / 100 AS dollars, date_trunc('minute', bid.datetime) AS minute,
             extract(hour FROM bid.datetime) AS hour, CASE WHEN bid.price > 100 THEN 'high' ELSE 'low' END AS band,
             coalesce(person.name, 'anon') AS who, md5(CAST(bid.bidder AS TEXT)) AS h, '{"a":1}'::json ->> 'a' AS a
      FROM n WHERE bid IS NOT NULL AND person.name NOT LIKE 'x%';`);
    expect(p.sinks[0]!.input.schema.fields.map((f) => `${f.name}:${f.type.kind}`)).toEqual([
      "doubled:int",
      "dollars:float",
      "minute:timestamp",
      "hour:int",
      "band:string",
      "who:string",
      "h:string",
      "a:string",
    ]);
  });

  test("a sink without columns takes them from its query", () => {
    const p = plan(EVENTS + `CREATE TABLE out WITH (connector = 'single_file', path = '/o', format = 'json', type = 'sink');
      INSERT INTO out SELECT user_id, value + 1 AS next FROM events;`);
    expect(p.sinks[0]!.table!.fields.map((f) => f.name)).toEqual(["user_id", "next"]);
  });

  test("impulse tables may declare any subset of its columns", () => {
    const p = plan("CREATE TABLE i (subtask_index BIGINT UNSIGNED NOT NULL, counter BIGINT UNSIGNED) WITH (connector = 'impulse', event_rate = '10'); SELECT * FROM i;");
    expect(p.sinks[0]!.input.schema.fields.map((f) => f.name)).toEqual(["subtask_index", "counter"]);
  });
});

describe("errors name the place and the fix", () => {
  test("unknown column with a suggestion, at its line and column", () => {
    const sql = `CREATE TABLE bids (auction BIGINT, price BIGINT) WITH (connector = 'single_file', path = '/b', format = 'json');
SELECT auction,
       pirce FROM bids;`;
    const e = planError(sql);
    expect(e.message).toBe("unknown column `pirce` in `bids`; did you mean `price`?");
    expect([e.line, e.column]).toEqual([3, 8]);
    expect(e.formatted).toContain("error at line 3, column 8");
  });

  test("misspelt option lists the valid ones", () => {
    const e = planError("CREATE TABLE i WITH (connector = 'impulse', event_rate = '1', mesage_count = '5');\nSELECT * FROM i;");
    expect(e.message).toContain("unknown option 'mesage_count'");
    expect(e.message).toContain("did you mean 'message_count'");
    expect(e.message).toContain("event_time_interval");
    expect([e.line, e.column]).toEqual([1, 63]);
  });

  test("bad option values, unknown connectors and formats", () => {
    expect(planError("CREATE TABLE i WITH (connector = 'impulse', event_rate = 'fast'); SELECT * FROM i;").message).toContain("option 'event_rate'");
    expect(planError("CREATE TABLE i WITH (connector = 'impuls', event_rate = '1'); SELECT * FROM i;").message).toContain("did you mean `impulse`");
    expect(planError("CREATE TABLE i (a INT) WITH (connector = 'single_file', path = '/x', format = 'jsn'); SELECT * FROM i;").message).toContain("unknown format 'jsn'");
    expect(planError("CREATE TABLE i (a INT) WITH (connector = 'single_file', path = '/x'); SELECT * FROM i;").message).toContain("needs a format");
    expect(planError("CREATE TABLE i WITH (connector = 'impulse'); SELECT * FROM i;").message).toContain("needs option 'event_rate'");
  });

  test("syntax errors point into the user's text, not the rewritten one", () => {
    const sql = EVENTS + "SELECT window, user_id FROM events WHERE value >;";
    const e = planError(sql);
    expect(e.message).toContain("syntax error");
    expect(e.line).toBe(3);
  });

  test("grouping mistakes", () => {
    expect(planError(EVENTS + "SELECT user_id, value, count(*) FROM events GROUP BY user_id;").message).toContain(
      "column `value` must appear in GROUP BY",
    );
    expect(planError(EVENTS + "SELECT tumble(INTERVAL '1' MINUTE) AS window, count(*) FROM events;").message).toContain("must also appear in GROUP BY");
    expect(planError(EVENTS + "SELECT hop(INTERVAL '3' SECOND, INTERVAL '10' SECOND) AS w, count(*) FROM events GROUP BY w;").message).toContain("multiple");
    expect(planError(EVENTS + "SELECT user_id FROM events WHERE count(*) > 1;").message).toContain("not allowed in WHERE");
  });

  test("type errors", () => {
    expect(planError(EVENTS + "SELECT user_id + 1 FROM events;").message).toContain("cannot combine TEXT and BIGINT");
    expect(planError(EVENTS + "SELECT sum(user_id) FROM events GROUP BY value;").message).toContain("sum() needs numbers");
    expect(planError(EVENTS + "SELECT nosuch(value) FROM events;").message).toContain("unknown function nosuch()");
  });

});

describe("joins", () => {
  test("an equi-join of two streams plans as an updating join hashed on its key; the output is append-only", () => {
    const p = plan(EVENTS + "SELECT a.user_id, a.value, b.value AS other FROM events a JOIN events b ON a.user_id = b.user_id AND a.value < b.value;");
    const out = p.sinks[0]!.input;
    // The projection and the join's own filter fused; each side keeps user_id and value (ts is read by nothing).
    expect(kinds(out)).toEqual(["map", "join", "map", "source", "map", "source"]);
    expect(out.updating).toBe(false);
    expect(out.schema.fields.map((f) => f.name)).toEqual(["user_id", "value", "other"]);
  });

  test("a LEFT JOIN without windows gives an updating result; a sink must accept updates", () => {
    const p = plan(EVENTS + "SELECT * FROM events a LEFT JOIN events b ON b.user_id = a.user_id;");
    expect(p.sinks[0]!.input.updating).toBe(true);
    expect(p.sinks[0]!.input.schema.fields.map((f) => f.nullable)).toEqual([true, true, true, true, true, true]);
  });

  test("a join of two aggregates over the same window is a window join keyed by the window too", () => {
    const p = plan(EVENTS + `SELECT a.user_id, a.n, b.total FROM
      (SELECT tumble(INTERVAL '1' MINUTE) AS window, user_id, count(*) AS n FROM events GROUP BY window, user_id) a
      JOIN (SELECT tumble(INTERVAL '1' MINUTE) AS window, user_id, sum(value) AS total FROM events GROUP BY window, user_id) b
      ON a.user_id = b.user_id;`);
    const join = (p.sinks[0]!.input as Extract<PlanNode, { kind: "map" }>).input as Extract<PlanNode, { kind: "join" }>;
    expect(join.kind).toBe("join");
    expect(join.window?.spec).toEqual({ kind: "tumble", width: 60_000_000 });
    expect(join.leftKeys.length).toBe(2);
    expect(join.updating).toBe(false);
  });

  test("unsupported join shapes are refused with what is supported and how to rewrite", () => {
    const windowed = (w: string) => `(SELECT ${w} AS window, user_id, count(*) AS n FROM events GROUP BY window, user_id)`;
    const cases: [string, string][] = [
      ["SELECT * FROM events a CROSS JOIN events b;", "CROSS JOIN is not supported"],
      ["SELECT * FROM events a JOIN events b ON a.value < b.value;", "needs an equality between a column of each side"],
      ["SELECT * FROM events a, events b;", "write a JOIN ... ON a.key = b.key"],
      ["SELECT * FROM events a JOIN events b USING (user_id);", "write ON a.key = b.key"],
      ["SELECT * FROM events a LEFT JOIN events b ON a.user_id = b.user_id AND b.value > 3;", "updating LEFT JOIN ... ON takes only equalities"],
      ["SELECT * FROM events a JOIN events b ON a.user_id = b.value;", "cast one side"],
      [`SELECT * FROM ${windowed("tumble(INTERVAL '1' MINUTE)")} a JOIN events b ON a.user_id = b.user_id;`, "one side of this join is windowed"],
      [`SELECT * FROM ${windowed("tumble(INTERVAL '1' MINUTE)")} a JOIN ${windowed("tumble(INTERVAL '2' MINUTE)")} b ON a.user_id = b.user_id;`, "different windows"],
      [`SELECT * FROM ${windowed("session(INTERVAL '1' MINUTE)")} a JOIN ${windowed("session(INTERVAL '1' MINUTE)")} b ON a.user_id = b.user_id;`, "session windows cannot be joined"],
    ];
    for (const [sql, message] of cases) {
      const err = planError(EVENTS + sql);
      expect(err.message).toContain(message);
      expect(err.line).toBeGreaterThan(0);
    }
  });

  test("a LEFT JOIN without windows into a sink that takes no updates is refused, naming debezium_json", () => {
    const sink = "CREATE TABLE out WITH (connector = 'single_file', path = '/tmp/out.jsonl', format = 'json', type = 'sink');\n";
    const err = planError(EVENTS + sink + "INSERT INTO out SELECT a.user_id, b.value FROM events a LEFT JOIN events b ON a.user_id = b.user_id;");
    expect(err.message).toContain("outer join without windows");
    expect(err.message).toContain("debezium_json");
  });

  test("an ambiguous unqualified column in a join names the fix", () => {
    expect(planError(EVENTS + "SELECT value FROM events a JOIN events b ON a.user_id = b.user_id;").message).toContain("ambiguous");
  });
});

describe("connection profiles and environment variables in options", () => {
  const profiles = {
    connectionProfile: (name: string) =>
      name === "local_files" ? { connector: "single_file", options: { path: "{{ RUNNEL_TEST_DIR }}/in.json", format: "json" } } : undefined,
  };

  test("a profile supplies the options the table leaves out; {{ VAR }} comes from the environment", () => {
    const p = planSql(
      `CREATE TABLE t (x INT) WITH (connection_profile = 'local_files', type = 'source');\nSELECT x FROM t;`,
      registry,
      { ...profiles, env: { RUNNEL_TEST_DIR: "/data" } },
    );
    const table = [...p.tables.values()].find((t) => t.name === "t")!;
    expect(table.connector).toBe("single_file");
    expect((table.options as any).path).toBe("/data/in.json");
  });

  test("an unknown profile, a profile of another connector and an unset variable are named", () => {
    const err = (sql: string, env: Record<string, string> = {}) => {
      try {
        planSql(sql, registry, { ...profiles, env });
      } catch (e) {
        return (e as Error).message;
      }
      return "planned";
    };
    expect(err(`CREATE TABLE t (x INT) WITH (connection_profile = 'nope', type = 'source'); SELECT x FROM t;`)).toContain(
      "unknown connection profile 'nope'",
    );
    expect(err(`CREATE TABLE t (x INT) WITH (connector = 'impulse', connection_profile = 'local_files', event_rate = '1'); SELECT x FROM t;`)).toContain(
      "is for connector 'single_file', not 'impulse'",
    );
    expect(err(`CREATE TABLE t (x INT) WITH (connection_profile = 'local_files', type = 'source'); SELECT x FROM t;`)).toContain(
      "RUNNEL_TEST_DIR, which is not set",
    );
  });
});
