/** The committed schema file and the schema the code builds must agree (run `bun run schema:print` after changing it). */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { printedSchema, SCHEMA_FILE } from "../../control-plane/print-schema.ts";

test("control-plane/schema.graphql is the printed schema of the code", () => {
  const committed = readFileSync(SCHEMA_FILE, "utf8");
  if (committed !== printedSchema()) {
    throw new Error("control-plane/schema.graphql is out of date: run `bun run schema:print` and commit the file");
  }
  expect(committed).toContain("type Subscription");
});
