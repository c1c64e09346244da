#!/usr/bin/env bun
/**
 * Builds the console (vite) into console/dist and stamps the build with a hash
 * of its sources, so the control plane can tell a missing or stale build and
 * rebuild it at start. Run by `bun install` (postinstall), `bun run
 * console:build`, and `bun run start` when the sources changed.
 *   bun console/build.ts            build now
 *   bun console/build.ts --if-stale build only when missing or stale
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";

export const CONSOLE_DIR = import.meta.dir;
export const DIST_DIR = join(CONSOLE_DIR, "dist");
const STAMP = join(DIST_DIR, ".source-hash");
const SOURCES = ["index.html", "vite.config.ts", "package.json", "tsconfig.json", "src", "public"];

function files(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => files(join(path, name)));
}

/** A hash of everything the build reads from this folder (dependencies are pinned by bun.lock). */
export function sourceHash(): string {
  const hasher = new Bun.CryptoHasher("sha256");
  for (const file of SOURCES.flatMap((s) => files(join(CONSOLE_DIR, s)))) {
    hasher.update(relative(CONSOLE_DIR, file));
    hasher.update(readFileSync(file));
  }
  return hasher.digest("hex");
}

export function isStale(): boolean {
  if (!existsSync(join(DIST_DIR, "index.html")) || !existsSync(STAMP)) return true;
  return readFileSync(STAMP, "utf8").trim() !== sourceHash();
}

export async function buildConsole(): Promise<void> {
  const hash = sourceHash();
  // vite from this project's node_modules (never a download).
  const vite = join(dirname(Bun.resolveSync("vite/package.json", CONSOLE_DIR)), "bin", "vite.js");
  const proc = Bun.spawn([process.execPath, vite, "build", "--logLevel", "warn"], { cwd: CONSOLE_DIR, stdout: "inherit", stderr: "inherit" });
  const code = await proc.exited;
  if (code !== 0) throw new Error(`the console's build (vite) failed with exit code ${code}; see the lines above, fix console/ and run \`bun run console:build\``);
  writeFileSync(STAMP, `${hash}\n`);
}

/** Builds when the build is missing or older than the sources; says so on stderr. */
export async function ensureConsoleBuilt(log: (m: string) => void = (m) => console.error(m)): Promise<void> {
  if (!isStale()) return;
  log("building the web console (console/dist is missing or older than its sources)…");
  await buildConsole();
}

if (import.meta.main) {
  if (process.argv.includes("--if-stale")) await ensureConsoleBuilt();
  else await buildConsole();
}
