/**
 * `col TYPE METADATA FROM 'key'`: the engine checks the key and type against
 * what the connector offers, puts those columns after the format's, hands the
 * format only its own columns and tells the reader which keys to append.
 * Uses a small connector of this test (no Kafka).
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Job, JobError } from "../../../core/dataflow/job.ts";
import { defineConnector, definePlugin, t, type Row, type SinkWriter } from "../../../core/plugin-api/index.ts";
import { PluginRegistry } from "../../../core/registry/registry.ts";
import { planSql, SqlError } from "../../../core/sql/index.ts";
import formatJson from "../../../plugins/format-json/index.ts";

const seen: { metadata?: string[]; formatFields?: number } = {};

const tagged = defineConnector({
  name: "tagged",
  options: {},
  needsFormat: true,
  metadata: { origin: { type: t.string() }, seq: { type: t.bigint() } },
  source: {
    create(ctx) {
      seen.metadata = ctx.metadata;
      let done = false;
      return {
        splits: () => ["only"],
        poll() {
          if (done) return { end: true };
          done = true;
          const rows = ['{"a": 1, "origin": "from the record"}', '{"a": 2}'].map((text, i) => {
            const row = ctx.format!.deserialize(text)!;
            seen.formatFields = row.length;
            for (const key of ctx.metadata ?? []) row.push(key === "origin" ? "connector" : i);
            return row;
          });
          return { batches: [{ split: "only", rows }] };
        },
        snapshot: () => ({}),
      };
    },
  },
  sink: { create: () => ({ write() {} }) },
});
const plain = defineConnector({ name: "plain", options: {}, needsFormat: true, sink: { create: () => ({ write() {} }) } });

function registry(): PluginRegistry {
  const r = new PluginRegistry();
  r.register(formatJson);
  r.register(definePlugin({ name: "metadata-test", connectors: [tagged, plain] }));
  return r;
}

const TABLE = `CREATE TABLE src (origin TEXT METADATA FROM 'origin', a INT, n BIGINT METADATA FROM 'seq') WITH (connector = 'tagged', format = 'json');`;

function planError(sql: string): string {
  try {
    planSql(sql, registry());
  } catch (err) {
    if (err instanceof SqlError) return err.message;
    throw err;
  }
  throw new Error("expected a SQL error");
}

describe("METADATA FROM columns", () => {
  test("come after the format's columns; the format sees only its own, the reader is told the keys", async () => {
    const r = registry();
    const pipeline = planSql(`${TABLE}\nSELECT * FROM src;`, r);
    const table = pipeline.tables.get("src")!;
    expect(table.fields.map((f) => f.name)).toEqual(["a", "origin", "n"]);
    expect(table.metadata).toEqual(["origin", "seq"]);
    const rows: Row[] = [];
    const job = new Job(pipeline, r, {
      parallelism: 1,
      stateDir: mkdtempSync(join(tmpdir(), "runnel-metadata-")),
      checkpointIntervalMs: 0,
      log: { info() {}, warn() {} },
      preview: (): SinkWriter => ({ write: (b) => void rows.push(...b.rows) }),
    });
    expect(await job.run()).toBe("end");
    expect(seen.metadata).toEqual(["origin", "seq"]);
    // The record's own "origin" field is not read: that column belongs to the connector.
    expect(seen.formatFields).toBe(1);
    expect(rows).toEqual([
      [1, "connector", 0],
      [2, "connector", 1],
    ]);
  });

  test("an unknown key, a mismatched type or a connector without metadata is a planning error", () => {
    expect(planError(`CREATE TABLE s (k TEXT METADATA FROM 'orign') WITH (connector = 'tagged', format = 'json');\nSELECT * FROM s;`)).toBe(
      "column `k`: connector 'tagged' has no metadata 'orign' (did you mean 'origin'?); it offers 'origin' (TEXT), 'seq' (BIGINT)",
    );
    expect(planError(`CREATE TABLE s (k TEXT METADATA FROM 'seq') WITH (connector = 'tagged', format = 'json');\nSELECT * FROM s;`)).toBe(
      "column `k`: metadata 'seq' is BIGINT; declare the column as BIGINT",
    );
    expect(planError(`CREATE TABLE s (k TEXT METADATA FROM 'x') WITH (connector = 'plain', format = 'json');\nSELECT * FROM s;`)).toBe(
      "column `k`: METADATA FROM is not supported by connector 'plain'",
    );
  });

  test("a table with metadata columns cannot be written to", async () => {
    const r = registry();
    const pipeline = planSql(`${TABLE}\nCREATE TABLE src2 (origin TEXT METADATA FROM 'origin', a INT, n BIGINT METADATA FROM 'seq') WITH (connector = 'tagged', format = 'json');\nINSERT INTO src2 SELECT * FROM src;`, r);
    const job = new Job(pipeline, r, { parallelism: 1, stateDir: mkdtempSync(join(tmpdir(), "runnel-metadata-")), checkpointIntervalMs: 0 });
    const err = await job.run().catch((e) => e);
    expect(err).toBeInstanceOf(JobError);
    expect((err as Error).message).toBe("table src2: its METADATA FROM columns are read-only, so it cannot be written to; insert into a table without them");
  });
});
