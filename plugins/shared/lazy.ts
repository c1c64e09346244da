/**
 * Libraries a plugin needs only to run (clients, codecs, file formats) are
 * loaded when a table first uses them, not when the registry loads the plugin:
 * every process (`runnel run`, each job worker, the control plane, each test)
 * creates the registry, and evaluating every plugin's libraries up front cost
 * about 350 ms of CPU before the first record. Planning needs only option
 * schemas and checks, which stay in each plugin's index.ts.
 *
 * A plugin still checks when it loads that its packages are installed
 * (resolving a name reads a few files; evaluating the package is what costs),
 * so a missing one is reported then, naming the plugin and what to install;
 * the loaders below say the same should it go missing later.
 */
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

/** Throws, naming the plugin and the command to run, when one of `packages` cannot be resolved from the plugin's folder. */
export function requirePackages(plugin: string, fromUrl: string, packages: string[]): void {
  const dir = dirname(fileURLToPath(fromUrl));
  for (const name of packages) {
    try {
      Bun.resolveSync(name, dir);
    } catch {
      throw missingPackage(plugin, name);
    }
  }
}

/** Imports a plugin's run-time module (`() => import("./source.ts")`) when a table needs it. */
export async function importFor<T>(plugin: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    throw explainLoadError(plugin, err);
  }
}

/**
 * The same for the plugin API's synchronous factories (a format's `deserializer`,
 * `serializer` and `validate`, a storage's `create`), which cannot await:
 * Bun's `require` loads the module (ES modules included) synchronously.
 */
export function requireFor<T>(plugin: string, load: () => T): T {
  try {
    return load();
  } catch (err) {
    throw explainLoadError(plugin, err);
  }
}

/** `requireFor` once: the getter returns the loaded module after its first call (cheap enough per record). */
export function lazyRequire<T>(plugin: string, load: () => T): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= requireFor(plugin, load));
}

function missingPackage(plugin: string, name: string): Error {
  return new Error(`plugin '${plugin}' needs the npm package '${name}', which is not installed; run bun add ${name} (or bun install)`);
}

/** A package that cannot be found becomes the message above; any other error passes unchanged. */
function explainLoadError(plugin: string, err: unknown): unknown {
  const message = err instanceof Error ? err.message : String(err);
  const spec = /Cannot find (?:package|module) '([^']+)'/.exec(message)?.[1];
  if (spec === undefined || spec.startsWith(".") || spec.startsWith("/")) return err;
  const parts = spec.split("/");
  return missingPackage(plugin, spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!);
}
