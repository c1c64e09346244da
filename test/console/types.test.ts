/**
 * The console is typed against the API: its GraphQL documents are checked by
 * gql.tada against the printed schema (control-plane/schema.graphql), through
 * introspection types that must match that schema, and the whole console
 * passes strict TypeScript. A schema change that breaks a console query fails here.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CONSOLE_DIR } from "../../console/build.ts";
import { REPO, tempDir } from "../kit/cli.ts";

setDefaultTimeout(120_000);

const bin = (name: string) => join(REPO, "node_modules", ".bin", name);

test("console/src/graphql-env.d.ts is generated from the printed schema (bun run console:codegen)", async () => {
  const out = join(tempDir("runnel-tada-"), "graphql-env.d.ts");
  const proc = Bun.spawn([bin("gql-tada"), "generate", "output", "--output", out], { cwd: CONSOLE_DIR, stdout: "pipe", stderr: "pipe" });
  expect(await proc.exited).toBe(0);
  const committed = readFileSync(join(CONSOLE_DIR, "src", "graphql-env.d.ts"), "utf8");
  if (readFileSync(out, "utf8") !== committed) throw new Error("console/src/graphql-env.d.ts is out of date: run `bun run console:codegen` and commit it");
});

test("the console type-checks (strict) against the schema", async () => {
  const proc = Bun.spawn([bin("tsc"), "--noEmit", "-p", CONSOLE_DIR], { cwd: CONSOLE_DIR, stdout: "pipe", stderr: "pipe" });
  const [code, output] = await Promise.all([proc.exited, new Response(proc.stdout).text()]);
  if (code !== 0) throw new Error(`tsc -p console failed:\n${output}`);
  expect(code).toBe(0);
});
