/**
 * The plugin registry: the one place connectors, formats, UDFs and UDAFs are
 * found by name. Built-in plugins and third-party packages register through the
 * same `register` call; a registry can be cloned and trimmed for tests.
 */
import {
  PLUGIN_API_VERSION,
  type ConnectorDefinition,
  type FormatDefinition,
  type PluginDefinition,
  type SchedulerDefinition,
  type StorageDefinition,
  type UdafDefinition,
  type UdfDefinition,
} from "../plugin-api/index.ts";

export interface PluginLoadFailure {
  plugin: string;
  cause: string;
}

export class DuplicateComponentError extends Error {}

export class PluginRegistry {
  readonly plugins = new Map<string, PluginDefinition>();
  readonly connectors = new Map<string, ConnectorDefinition<any>>();
  readonly formats = new Map<string, FormatDefinition<any>>();
  readonly udfs = new Map<string, UdfDefinition>();
  readonly udafs = new Map<string, UdafDefinition<any>>();
  readonly storages = new Map<string, StorageDefinition>();
  readonly schedulers = new Map<string, SchedulerDefinition>();
  /** Plugins that could not be loaded; the others still are. */
  readonly failures: PluginLoadFailure[] = [];
  /** Which plugin provided each component, for messages and catalogs. */
  readonly owner = new Map<string, string>();

  register(plugin: PluginDefinition): void {
    if (!plugin || typeof plugin !== "object" || typeof plugin.name !== "string") {
      throw new Error("a plugin must be an object with a name (use definePlugin from runnel's plugin API)");
    }
    if (plugin.apiVersion !== undefined && plugin.apiVersion !== PLUGIN_API_VERSION) {
      throw new Error(
        `plugin '${plugin.name}' was built for plugin API ${plugin.apiVersion}, this Runnel has ${PLUGIN_API_VERSION}`,
      );
    }
    if (this.plugins.has(plugin.name)) throw new DuplicateComponentError(`plugin '${plugin.name}' is registered twice`);
    // Check every name before adding any, so a rejected plugin leaves no half of itself behind.
    const claims: [Map<string, unknown>, string, string, unknown][] = [];
    for (const c of plugin.connectors ?? []) claims.push([this.connectors, "connector", c.name, c]);
    for (const f of plugin.formats ?? []) claims.push([this.formats, "format", f.name, f]);
    for (const u of plugin.udfs ?? []) claims.push([this.udfs, "function", u.name.toLowerCase(), u]);
    for (const u of plugin.udafs ?? []) claims.push([this.udafs, "aggregate", u.name.toLowerCase(), u]);
    for (const st of plugin.storages ?? []) claims.push([this.storages, "storage", st.scheme.toLowerCase(), st]);
    for (const sc of plugin.schedulers ?? []) claims.push([this.schedulers, "scheduler", sc.name, sc]);
    for (const [map, kind, name] of claims) {
      if (map.has(name)) {
        throw new DuplicateComponentError(
          `plugin '${plugin.name}' registers ${kind} '${name}', already provided by plugin '${this.owner.get(`${kind}:${name}`)}'`,
        );
      }
    }
    for (const [map, kind, name, value] of claims) {
      map.set(name, value);
      this.owner.set(`${kind}:${name}`, plugin.name);
    }
    this.plugins.set(plugin.name, plugin);
  }

  connector(name: string): ConnectorDefinition<any> | undefined {
    return this.connectors.get(name);
  }
  format(name: string): FormatDefinition<any> | undefined {
    return this.formats.get(name);
  }
  udf(name: string): UdfDefinition | undefined {
    return this.udfs.get(name.toLowerCase());
  }
  udaf(name: string): UdafDefinition<any> | undefined {
    return this.udafs.get(name.toLowerCase());
  }
  storage(scheme: string): StorageDefinition | undefined {
    return this.storages.get(scheme.toLowerCase());
  }
  scheduler(name: string): SchedulerDefinition | undefined {
    return this.schedulers.get(name);
  }

  /** A copy that tests may trim or extend without touching the original. */
  clone(): PluginRegistry {
    const copy = new PluginRegistry();
    for (const p of this.plugins.values()) copy.register(p);
    copy.failures.push(...this.failures);
    return copy;
  }
}
