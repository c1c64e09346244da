/**
 * The record encoder that replaces kafkajs's writes the same bytes as
 * kafkajs's own for every kind of key, value and timestamp delta.
 */
import { expect, test } from "bun:test";
import { createRequire } from "node:module";
import { createRecordEncoder } from "../../../plugins/connector-kafka/kafkajs-fixes.ts";

const require = createRequire(import.meta.url);
const Encoder = require("kafkajs/src/protocol/encoder.js");

// kafkajs's own Record, loaded apart from the patched module cache entry.
function originalRecord(): (args: unknown) => { buffer: Buffer } {
  const path = require.resolve("kafkajs/src/protocol/recordBatch/record/v0/index.js");
  const source = require("node:fs").readFileSync(path, "utf8");
  const module = { exports: {} as any };
  const fn = new Function("module", "exports", "require", source);
  fn(module, module.exports, (p: string) => require(require("node:path").resolve(require("node:path").dirname(path), p)));
  return module.exports;
}

test("the fast record encoder writes kafkajs's bytes exactly", () => {
  const original = originalRecord();
  const fast = createRecordEncoder(Encoder, original);
  const cases = [
    { offsetDelta: 0, timestampDelta: 0, key: null, value: "{}" },
    { offsetDelta: 5, timestampDelta: 1234, key: "user-1", value: '{"a":"é ü 東京"}' },
    { offsetDelta: 70000, timestampDelta: -5000, key: Buffer.from([0, 1, 2]), value: Buffer.alloc(300, 7) },
    { offsetDelta: 127, timestampDelta: 2 ** 40, key: "", value: "" },
    { offsetDelta: 1, timestampDelta: 3, key: "k", value: null },
    { offsetDelta: 2, timestampDelta: 9, key: "k", value: "v".repeat(20000) },
  ];
  for (const c of cases) {
    expect(Buffer.compare((fast(c) as any).buffer, original(c).buffer)).toBe(0);
  }
  // Headers go to kafkajs's own encoder.
  const withHeaders = { offsetDelta: 0, timestampDelta: 0, key: "k", value: "v", headers: { h: "x" } };
  expect(Buffer.compare((fast(withHeaders) as any).buffer, original(withHeaders).buffer)).toBe(0);
});

test("a process that loads the connector gets kafkajs with the replacements in place", async () => {
  // In its own process, as the runnel command loads plugins (this test process may have loaded kafkajs already).
  const client = require.resolve("../../../plugins/connector-kafka/client.ts");
  const proc = Bun.spawn(["bun", "-e", `const m = await import(${JSON.stringify(client)}); console.log(JSON.stringify([m.kafkajsGroupingPatched, m.kafkajsRecordPatched, m.kafkajsDecoderPatched]))`], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(proc.stdout).text();
  expect(await proc.exited).toBe(0);
  expect(JSON.parse(out.trim())).toEqual([true, true, true]);
});

test("the fast record decoder reads records as kafkajs's own does", () => {
  const { createRecordDecoder } = require("../../../plugins/connector-kafka/kafkajs-fixes.ts");
  const Decoder = require("kafkajs/src/protocol/decoder.js");
  const path = require.resolve("kafkajs/src/protocol/recordBatch/record/v0/decoder.js");
  const source = require("node:fs").readFileSync(path, "utf8");
  const module = { exports: {} as any };
  new Function("module", "exports", "require", source)(module, module.exports, (p: string) => require(require("node:path").resolve(require("node:path").dirname(path), p)));
  const original = module.exports;
  const fast = createRecordDecoder(original);
  const encode = createRecordEncoder(Encoder, originalRecord());
  const records = [
    { offsetDelta: 0, timestampDelta: 0, key: null, value: "{}" },
    { offsetDelta: 70000, timestampDelta: -5000, key: Buffer.from([0, 1, 2]), value: Buffer.alloc(300, 7) },
    { offsetDelta: 3, timestampDelta: 2 ** 40, key: "k", value: null },
    { offsetDelta: 4, timestampDelta: 1, key: "k", value: "v", headers: { h: "x", i: ["1", "2"] } },
  ];
  for (const timestampType of [0, 1]) {
    const context = { firstOffset: "123456789012", firstTimestamp: "1700000000000", maxTimestamp: "1700000009999", magicByte: 2, isControlBatch: false, timestampType, inTransaction: true, producerId: "7" };
    for (const r of records) {
      const bytes: Buffer = (encode(r) as any).buffer;
      // The batch decoder hands each record's bytes after its length prefix.
      const body = new Decoder(bytes).readVarIntBytes();
      const a = fast(new Decoder(body), context);
      const b = original(new Decoder(body), context);
      expect(a).toEqual(b);
    }
  }
});
