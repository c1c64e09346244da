/**
 * The rules the layout stands on: the project type-checks under strict
 * TypeScript; core/ never imports from plugins/ (nor the control plane, but
 * for the CLI's on-demand control-plane commands: migrate, token, secrets); the public plugin API has no
 * runtime imports at all, so third-party plugins can depend on it alone.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { REPO } from "../kit/cli.ts";

setDefaultTimeout(120_000);

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith(".ts")) out.push(path);
  }
  return out;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;
const importsOf = (file: string) => [...readFileSync(file, "utf8").matchAll(IMPORT)].map((m) => m[1] ?? m[2]!);

test("core/ never imports plugins/, and the control plane only for its CLI commands (`runnel migrate`, `token`, `secrets`)", () => {
  const offences: string[] = [];
  for (const file of sources(join(REPO, "core"))) {
    for (const spec of importsOf(file)) {
      if (/(^|\/)plugins\//.test(spec)) offences.push(`${relative(REPO, file)} imports ${spec}`);
      if (/control-plane\//.test(spec) && !(file.endsWith(join("cli", "main.ts")) && spec.endsWith("control-plane/cli.ts"))) {
        offences.push(`${relative(REPO, file)} imports ${spec}`);
      }
    }
  }
  expect(offences).toEqual([]);
});

test("the plugin API imports nothing but its own type modules", () => {
  for (const file of sources(join(REPO, "core", "plugin-api"))) {
    for (const spec of importsOf(file)) expect(spec.startsWith("./")).toBe(true);
  }
});

test("the whole project type-checks (tsc --noEmit, strict)", async () => {
  const proc = Bun.spawn(["bunx", "tsc", "--noEmit", "-p", "."], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  if (code !== 0) throw new Error(`tsc found errors:\n${out.slice(0, 4000)}`);
  expect(code).toBe(0);
});
