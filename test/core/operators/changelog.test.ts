/**
 * Debezium change streams as updating sources: c/r insert, u retracts before and
 * inserts after, d retracts; PRIMARY KEY normalises streams whose updates carry
 * no before (PostgreSQL's default replica identity). Filters, projections,
 * aggregates, joins and sinks then see exact retractions: the table each query
 * ends as is checked against DuckDB on the final source tables.
 */
import { beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { duckQuery } from "../../kit/duckdb.ts";
import { foldChanges, normalizeRows, readJsonLines } from "../../kit/rows.ts";
import { freshPostgresDatabase } from "../../kit/services.ts";

setDefaultTimeout(90_000);

type Rec = Record<string, unknown>;
interface Event {
  before: Rec | null;
  after: Rec | null;
  op: "c" | "u" | "d" | "r";
}

/** A deterministic PRNG so failures reproduce. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random changes to a keyed table, and the table they leave. */
function changes(seed: number, count: number, keys: number, key: string, make: (rand: () => number, k: number) => Rec) {
  const rand = prng(seed);
  const table = new Map<number | string, Rec>();
  const events: Event[] = [];
  for (let i = 0; i < count; i++) {
    const k = Math.floor(rand() * keys);
    const id = key === "owner" ? `o${k}` : k;
    const old = table.get(id);
    if (!old) {
      const row = { [key]: id, ...make(rand, k) };
      table.set(id, row);
      events.push({ before: null, after: row, op: i < keys / 2 ? "r" : "c" });
    } else if (rand() < 0.65) {
      const row = { [key]: id, ...make(rand, k) };
      table.set(id, row);
      events.push({ before: old, after: row, op: "u" });
    } else {
      table.delete(id);
      events.push({ before: old, after: null, op: "d" });
    }
  }
  return { events, table: [...table.values()] };
}

let dir: string;
const accounts = changes(7, 400, 40, "id", (rand) => ({ owner: `o${Math.floor(rand() * 8)}`, n: Math.floor(rand() * 100) - 20 }));
const owners = changes(11, 60, 10, "owner", (rand) => ({ region: ["eu", "us", "apac"][Math.floor(rand() * 3)] }));

/** PostgreSQL with REPLICA IDENTITY DEFAULT: updates carry no before, deletes only the key. */
function defaultIdentity(events: Event[], key: string): Event[] {
  return events.map((e) => (e.op === "u" ? { ...e, before: null } : e.op === "d" ? { ...e, before: { [key]: e.before![key] } } : e));
}

function writeEvents(name: string, events: Event[]): string {
  const file = join(dir, `${name}.jsonl`);
  const lines = events.map((e) => JSON.stringify(e));
  // A tombstone carried with its schema (Kafka Connect with schemas on) reads as nothing.
  lines.splice(3, 0, JSON.stringify({ schema: { type: "struct" }, payload: null }));
  writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

const TABLES = (accountsFile: string, ownersFile: string, keyed: boolean) => `
CREATE TABLE accounts (id BIGINT, owner TEXT, n BIGINT${keyed ? ", PRIMARY KEY (id)" : ""})
  WITH (connector = 'single_file', path = '${accountsFile}', format = 'debezium_json', type = 'source');
CREATE TABLE owners (owner TEXT${keyed ? " PRIMARY KEY" : ""}, region TEXT)
  WITH (connector = 'single_file', path = '${ownersFile}', format = 'debezium_json', type = 'source');
`;

async function run(tables: string, query: string, name: string, parallelism = 2): Promise<Rec[]> {
  const out = join(dir, `${name}.out.jsonl`);
  const sql = `${tables}
CREATE TABLE results WITH (connector = 'single_file', path = '${out}', format = 'debezium_json', type = 'sink');
INSERT INTO results ${query};`;
  const r = await runCli(["run", writeSql(dir, sql, `${name}.sql`), "--quiet", "--parallelism", String(parallelism)]);
  if (r.code !== 0) throw new Error(`runnel failed (${r.code}):\n${r.stderr}`);
  return readJsonLines(out);
}

let finalAccounts: string;
let finalOwners: string;
beforeAll(() => {
  dir = tempDir("runnel-changelog-");
  finalAccounts = join(dir, "final-accounts.jsonl");
  finalOwners = join(dir, "final-owners.jsonl");
  writeFileSync(finalAccounts, accounts.table.map((r) => JSON.stringify(r)).join("\n") + "\n");
  writeFileSync(finalOwners, owners.table.map((r) => JSON.stringify(r)).join("\n") + "\n");
});

const DUCK = () => `WITH accounts AS (SELECT * FROM read_json('${finalAccounts}', columns = {id: 'BIGINT', owner: 'VARCHAR', n: 'BIGINT'})),
  owners AS (SELECT * FROM read_json('${finalOwners}', columns = {owner: 'VARCHAR', region: 'VARCHAR'}))`;

const QUERIES: [string, string][] = [
  ["projection", "SELECT id, owner, n * 2 AS n2 FROM accounts WHERE n % 3 <> 0"],
  ["aggregate", "SELECT owner, count(*) AS c, sum(n) AS s, min(n) AS lo, max(n) AS hi FROM accounts GROUP BY owner"],
  ["join", "SELECT a.id, a.n, o.region FROM accounts a JOIN owners o ON a.owner = o.owner"],
  ["left_join", "SELECT a.id, o.region FROM accounts a LEFT JOIN owners o ON a.owner = o.owner"],
  ["join_aggregate", "SELECT o.region, count(*) AS c, sum(a.n) AS s FROM accounts a JOIN owners o ON a.owner = o.owner GROUP BY o.region"],
  ["aggregate_join", "SELECT a.owner, a.c, o.region FROM (SELECT owner, count(*) AS c FROM accounts GROUP BY owner) a LEFT JOIN owners o ON a.owner = o.owner"],
];

describe("Debezium sources", () => {
  test("the issue's example: c(3), u(3→5), c(2), d(2), then sum(n) is 5 (it was 12)", async () => {
    const file = join(dir, "small.jsonl");
    const events = [
      { before: null, after: { id: 1, n: 3 }, op: "c" },
      { before: { id: 1, n: 3 }, after: { id: 1, n: 5 }, op: "u" },
      { before: null, after: { id: 2, n: 2 }, op: "c" },
      { before: { id: 2, n: 2 }, after: null, op: "d" },
    ];
    writeFileSync(file, events.map((e) => JSON.stringify(e)).join("\n") + "\n");
    const tables = `CREATE TABLE t (id BIGINT, n BIGINT) WITH (connector = 'single_file', path = '${file}', format = 'debezium_json', type = 'source');`;
    expect(foldChanges((await run(tables, "SELECT sum(n) AS total FROM t", "small", 1)) as any)).toEqual([{ total: 5 }]);
  });

  for (const keyed of [false, true]) {
    const label = keyed ? "PRIMARY KEY, updates without before and deletes with the key only" : "no key, full before images";
    for (const [name, query] of QUERIES) {
      test(`${label}: ${name} ends as DuckDB computes it on the final tables`, async () => {
        const a = writeEvents(`accounts-${keyed}`, keyed ? defaultIdentity(accounts.events, "id") : accounts.events);
        const o = writeEvents(`owners-${keyed}`, keyed ? defaultIdentity(owners.events, "owner") : owners.events);
        const ours = foldChanges((await run(TABLES(a, o, keyed), query, `${name}-${keyed}`)) as any);
        const expected = await duckQuery(`${DUCK()} ${query}`);
        expect(expected.length).toBeGreaterThan(2);
        expect(normalizeRows(ours)).toEqual(normalizeRows(expected));
      });
    }
  }

  test("without a PRIMARY KEY, an update without before stops the job naming the table and the fix", async () => {
    const a = writeEvents("accounts-nobefore", defaultIdentity(accounts.events, "id"));
    const o = writeEvents("owners-plain", owners.events);
    const sql = `${TABLES(a, o, false)}\nSELECT owner, sum(n) FROM accounts GROUP BY owner;`;
    const r = await runCli(["run", writeSql(dir, sql, "nobefore.sql"), "--quiet"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("source 'accounts' read an update without its previous row");
    expect(r.stderr).toContain("Declare the table's PRIMARY KEY");
  });

  test("a pass-through into a debezium_json sink reproduces the input's changes, with or without a key", async () => {
    for (const keyed of [false, true]) {
      const a = writeEvents(`accounts-pass-${keyed}`, accounts.events);
      const o = writeEvents(`owners-pass-${keyed}`, owners.events);
      const out = await run(TABLES(a, o, keyed), "SELECT * FROM accounts", `passthrough-${keyed}`, 1);
      // Snapshot reads (r) are written as creates.
      expect(out).toEqual(accounts.events.map((e) => ({ ...e, op: e.op === "r" ? "c" : e.op })));
    }
  });

  test("a PostgreSQL sink in upsert mode ends as the source table", async () => {
    const url = await freshPostgresDatabase();
    const a = writeEvents("accounts-pg", defaultIdentity(accounts.events, "id"));
    const o = writeEvents("owners-pg", owners.events);
    const sql = `${TABLES(a, o, true)}
CREATE TABLE mirror (id BIGINT, owner TEXT, n BIGINT) WITH (connector = 'postgres', connection_string = '${url}', table_name = 'mirror',
  sink.mode = 'upsert', sink.primary_key = 'id', sink.create_table = 'true');
INSERT INTO mirror SELECT id, owner, n FROM accounts;`;
    const r = await runCli(["run", writeSql(dir, sql, "pg.sql"), "--quiet", "--parallelism", "2"]);
    expect(r.stderr).not.toContain("error");
    expect(r.code).toBe(0);
    const { SQL } = await import("bun");
    const db = new SQL(url);
    const rows = await db`SELECT id, owner, n FROM mirror`;
    await db.close();
    expect(normalizeRows(rows.map((x: Rec) => ({ ...x, id: Number(x.id), n: Number(x.n) })))).toEqual(normalizeRows(accounts.table));
  });
});
