/**
 * Where @dsnp/parquetjs is installed, checked without loading it: the format
 * plugin calls this when it loads (so a wrong version fails the plugin, naming
 * what to do), parquetjs.ts before it loads the library on first use.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

/** The nearest installed copy (what Node's resolution would pick first), and its version. */
function nearestInstall(): { dir: string; version: string } | null {
  let dir = import.meta.dir;
  for (;;) {
    const pkg = join(dir, "node_modules", "@dsnp", "parquetjs", "package.json");
    if (existsSync(pkg)) return { dir: dirname(pkg), version: String(JSON.parse(readFileSync(pkg, "utf8")).version).replace(/^v/, "") };
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** The entry file of the installed copy; throws saying what to install when it is missing or a version without code. */
export function parquetjsEntry(): string {
  const install = nearestInstall();
  if (!install) throw new Error("@dsnp/parquetjs is not installed; run bun install");
  if (!install.version.startsWith("1.8.")) {
    throw new Error(`@dsnp/parquetjs ${install.version} is installed at ${install.dir}; Runnel needs 1.8.x (1.9.3 was published without code). Pin it and run bun install`);
  }
  // Resolve from that copy itself: when its entry file is missing, a bare import could silently load
  // another copy from a parent node_modules.
  const entry = join(install.dir, "dist", "parquet.js");
  if (!existsSync(entry)) throw new Error(`@dsnp/parquetjs at ${install.dir} has no ${entry}; reinstall it (bun install --force)`);
  return entry;
}
