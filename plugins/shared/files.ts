/** Reading files named by options (certificates, keys), with errors naming the option. */
import { readFileSync } from "node:fs";

/** The file's bytes, or undefined when the option is not set. */
export function readOptionFile(path: string | undefined, option: string): Buffer | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`option '${option}': cannot read '${path}': ${(err as Error).message}`);
  }
}
