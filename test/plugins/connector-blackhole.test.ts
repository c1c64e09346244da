import { describe, expect, test } from "bun:test";
import { field, t } from "../../core/plugin-api/index.ts";
import blackholePlugin, { blackhole } from "../../plugins/connector-blackhole/index.ts";
import { sinkContext } from "./kit.ts";

const FIELDS = [field("a", t.bigint()), field("b", t.bigint()), field("c", t.bigint())];

describe("blackhole connector", () => {
  test("discards everything", async () => {
    expect(blackholePlugin.connectors!.map((c) => c.name)).toEqual(["blackhole"]);
    const w = await blackhole.sink!.create(sinkContext(blackhole, { fields: FIELDS }));
    expect(w.write({ rows: [[1, 2, 3]], times: [0] })).toBeUndefined();
    expect(blackhole.source).toBeUndefined();
  });
});
