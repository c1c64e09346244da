/**
 * Loads plugins named by module specifier — built-in ones under plugins/ and
 * third-party npm packages alike — from package.json (`"runnel": { "plugins": [...] }`)
 * and runnel.config.ts (`export default { plugins: [...] }`). A plugin that fails
 * to load is recorded with its name and cause; the rest still load.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve, sep } from "node:path";
import type { PluginDefinition } from "../plugin-api/index.ts";
import { PluginRegistry } from "./registry.ts";

export type PluginEntry = string | PluginDefinition;

export interface RunnelConfig {
  plugins?: PluginEntry[];
}

/** Identity helper for runnel.config.ts, for type inference. */
export function defineConfig(config: RunnelConfig): RunnelConfig {
  return config;
}

/** The plugin entries a project lists, package.json first, then runnel.config.ts. */
export async function projectPluginEntries(projectDir: string): Promise<PluginEntry[]> {
  const entries: PluginEntry[] = [];
  const pkgPath = join(projectDir, "package.json");
  if (existsSync(pkgPath)) {
    const pkg = JSON.parse(readFileSync(pkgPath, "utf8"));
    entries.push(...((pkg.runnel?.plugins as string[] | undefined) ?? []));
  }
  for (const name of ["runnel.config.ts", "runnel.config.js"]) {
    const configPath = join(projectDir, name);
    if (!existsSync(configPath)) continue;
    const mod = await import(configPath);
    const config = (mod.default ?? mod) as RunnelConfig;
    entries.push(...(config.plugins ?? []));
    break;
  }
  return entries;
}

/**
 * Resolves a specifier against the project. Bun falls back to a parent
 * node_modules when a package's own entry file is missing; we refuse that so a
 * broken install is reported instead of silently loading some other copy.
 */
function resolveEntry(spec: string, projectDir: string): string {
  if (spec.startsWith(".") || isAbsolute(spec)) {
    const path = resolve(projectDir, spec);
    return Bun.resolveSync(path, projectDir);
  }
  const resolved = Bun.resolveSync(spec, projectDir);
  const ownDir = join(projectDir, "node_modules", ...spec.split("/"));
  if (existsSync(ownDir) && !resolved.startsWith(ownDir + sep)) {
    throw new Error(`package '${spec}' is installed at ${ownDir} but its entry file is missing (resolved to ${resolved})`);
  }
  return resolved;
}

function pluginsOf(mod: Record<string, unknown>): PluginDefinition[] {
  const value = mod.default ?? mod.plugin ?? mod.plugins;
  const list = Array.isArray(value) ? value : [value];
  const plugins = list.filter((p): p is PluginDefinition => !!p && typeof p === "object" && "name" in p);
  if (plugins.length === 0) throw new Error("the module exports no plugin (export default definePlugin({...}))");
  return plugins;
}

export async function loadPlugins(
  registry: PluginRegistry,
  entries: PluginEntry[],
  projectDir: string,
): Promise<PluginRegistry> {
  for (const entry of entries) {
    const label = typeof entry === "string" ? entry : entry.name;
    try {
      const plugins = typeof entry === "string" ? pluginsOf(await import(resolveEntry(entry, projectDir))) : [entry];
      for (const p of plugins) registry.register(p);
    } catch (err) {
      registry.failures.push({ plugin: label, cause: err instanceof Error ? err.message : String(err) });
    }
  }
  return registry;
}

/** The directory holding the Runnel installation (where its package.json lists the built-ins). */
export const RUNNEL_HOME = resolve(dirname(new URL(import.meta.url).pathname), "..", "..");

/**
 * A registry with Runnel's built-in plugins and the user's project plugins.
 * When the project is Runnel itself, its list is read once.
 */
export async function createRegistry(projectDir = process.cwd()): Promise<PluginRegistry> {
  const registry = new PluginRegistry();
  await loadPlugins(registry, await projectPluginEntries(RUNNEL_HOME), RUNNEL_HOME);
  if (resolve(projectDir) !== RUNNEL_HOME) {
    await loadPlugins(registry, await projectPluginEntries(projectDir), projectDir);
  }
  return registry;
}
