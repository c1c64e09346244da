/**
 * Plugins load through one path: Runnel's built-ins from its package.json,
 * third-party packages from a project's package.json or runnel.config.ts. A
 * plugin that fails is reported with its name and cause; the rest still load.
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRegistry } from "../../../core/registry/loader.ts";
import { REPO, runCli, tempDir, writeSql } from "../../kit/cli.ts";

// These tests run real processes; each file sets its own limit so it also runs alone.
setDefaultTimeout(180_000);

const FIXTURE = join(REPO, "test", "fixtures", "packages", "runnel-plugin-greeting");

/** A user project with the fixture installed as an npm package would be. */
function project(config: { packageJson?: string[]; configTs?: string[] }): string {
  const dir = tempDir("runnel-project-");
  mkdirSync(join(dir, "node_modules"), { recursive: true });
  cpSync(FIXTURE, join(dir, "node_modules", "runnel-plugin-greeting"), { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "my-pipelines", private: true, runnel: { plugins: config.packageJson ?? [] } }));
  if (config.configTs) {
    writeFileSync(join(dir, "runnel.config.ts"), `export default { plugins: ${JSON.stringify(config.configTs)} };\n`);
  }
  return dir;
}

describe("plugin loading", () => {
  test("built-in plugins are registered like any other", async () => {
    const registry = await createRegistry(REPO);
    expect(registry.failures).toEqual([]);
    for (const c of ["impulse", "nexmark", "single_file", "stdout", "blackhole"]) expect(registry.connector(c)).toBeDefined();
    for (const f of ["json", "debezium_json"]) expect(registry.format(f)).toBeDefined();
  });

  test("an npm package listed in package.json loads from node_modules", async () => {
    const dir = project({ packageJson: ["runnel-plugin-greeting"] });
    const registry = await createRegistry(dir);
    expect(registry.failures).toEqual([]);
    expect(registry.udf("greet")).toBeDefined();
    expect(registry.udaf("longest")).toBeDefined();
    expect(registry.connector("greetings")).toBeDefined();
    expect(registry.connector("impulse")).toBeDefined();
  });

  test("runnel.config.ts lists plugins too; a broken one is reported and the rest load", async () => {
    const dir = project({ configTs: ["runnel-plugin-greeting", "runnel-plugin-missing", "./broken.ts"] });
    writeFileSync(join(dir, "broken.ts"), "throw new Error('boom at import');\n");
    const registry = await createRegistry(dir);
    expect(registry.udf("greet")).toBeDefined();
    const byName = Object.fromEntries(registry.failures.map((f) => [f.plugin, f.cause]));
    expect(Object.keys(byName).sort()).toEqual(["./broken.ts", "runnel-plugin-missing"]);
    expect(byName["./broken.ts"]).toContain("boom at import");
    expect(byName["runnel-plugin-missing"]).toMatch(/runnel-plugin-missing/);
  });

  test("a package whose entry file is missing is refused, not resolved from a parent node_modules", async () => {
    const dir = project({ packageJson: ["runnel-plugin-greeting"] });
    rmSync(join(dir, "node_modules", "runnel-plugin-greeting", "index.js"));
    const registry = await createRegistry(dir);
    expect(registry.udf("greet")).toBeUndefined();
    expect(registry.failures[0]?.plugin).toBe("runnel-plugin-greeting");
  });

  test("the CLI runs a pipeline that uses a third-party connector, UDF and UDAF", async () => {
    const dir = project({ packageJson: ["runnel-plugin-greeting"] });
    const sql = writeSql(
      dir,
      `CREATE TABLE people WITH (connector = 'greetings', names = 'ada, grace, linus');
       SELECT greet(name) AS hi FROM people;`,
    );
    const res = await runCli(["run", sql, "--quiet"], { cwd: dir });
    expect(res.stderr).not.toContain("warning");
    expect(res.code).toBe(0);
    expect(res.stdout.trim().split("\n").map((l) => JSON.parse(l).hi)).toEqual(["hello, ada", "hello, grace", "hello, linus"]);

    const agg = writeSql(
      dir,
      `CREATE TABLE people WITH (connector = 'greetings', names = 'ada, grace, linus');
       SELECT longest(name) AS name FROM people;`,
      "agg.sql",
    );
    const res2 = await runCli(["run", agg, "--quiet"], { cwd: dir });
    expect(res2.code).toBe(0);
    const changes = res2.stdout.trim().split("\n").map((l) => JSON.parse(l));
    expect(changes.at(-1).after).toEqual({ name: "grace" });
  });
});
