/**
 * The control plane's own files are for its user alone: directories 0700,
 * files 0600 (the process runs with umask 077). PGlite sets its files' modes
 * itself (0666), so its folder is tightened again when it opens and closes;
 * in between, the 0700 folder already keeps everyone else out.
 */
import { chmodSync, lstatSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** Creates `dir` (and missing parents) private to this user, and makes an existing one private. */
export function privateDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

/** Directories 0700 and files 0600 under `dir` (symbolic links are left alone). */
export function tightenTree(dir: string): void {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  chmodSync(dir, 0o700);
  for (const name of entries) {
    const path = join(dir, name);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue; // gone meanwhile
    }
    if (st.isDirectory()) tightenTree(path);
    else if (st.isFile() && (st.mode & 0o777) !== 0o600) chmodSync(path, 0o600);
  }
}

/** Files this process creates from now on are private (umask 077); returns the previous mask. */
export const privateUmask = () => process.umask(0o077);
