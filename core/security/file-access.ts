/**
 * File-access policies handed to planning and to the running job (the
 * plugin API's `FileAccess`). The CLI runs the pipelines of the user at the
 * keyboard and leaves files unrestricted; the control plane runs pipelines
 * submitted over the network and confines them to a few directories.
 *
 * A path is resolved the way the kernel would walk it — each symbolic link
 * followed (dangling ones too, since writing through one creates its target),
 * `..` taken from the real directory reached so far — and only then compared
 * with the roots, so neither a link nor `..` leads outside them.
 */
import { lstatSync, readlinkSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { FileAccess } from "../plugin-api/index.ts";

const MAX_LINKS = 40; // as Linux's MAXSYMLINKS

const parent = (dir: string) => (dir === "/" ? "/" : dir.slice(0, dir.lastIndexOf("/")) || "/");

/** The real absolute path `path` names: symbolic links followed component by component, `.` and `..` applied. */
export function realPathOf(path: string): string {
  const pending = (isAbsolute(path) ? path : join(process.cwd(), path)).split("/").reverse();
  let current = "/";
  let links = 0;
  while (pending.length > 0) {
    const part = pending.pop()!;
    if (part === "" || part === ".") continue;
    if (part === "..") {
      current = parent(current);
      continue;
    }
    const next = current === "/" ? `/${part}` : `${current}/${part}`;
    let isLink = false;
    try {
      isLink = lstatSync(next).isSymbolicLink();
    } catch {
      // Not there (yet): the rest is created as plain directories and files.
    }
    if (!isLink) {
      current = next;
      continue;
    }
    if (++links > MAX_LINKS) throw new Error(`too many levels of symbolic links in '${path}'`);
    const target = readlinkSync(next);
    if (isAbsolute(target)) current = "/";
    for (const p of target.split("/").reverse()) pending.push(p);
  }
  return current;
}

export const unrestrictedFiles: FileAccess = {
  resolve: (path) => (isAbsolute(path) ? path : join(process.cwd(), path)),
};

/**
 * Allows paths under `roots` only (after resolution). `hint` ends the refusal
 * and says how to allow more (the control plane names its setting).
 */
export function confinedFiles(roots: string[], hint: string): FileAccess {
  const real = roots.map(realPathOf);
  const inside = (p: string) => real.some((r) => r === "/" || p === r || p.startsWith(`${r}/`));
  return {
    resolve(path, option) {
      if (typeof path !== "string" || path === "" || path.includes("\0")) throw new Error(`option '${option}' must be a file path`);
      const resolved = realPathOf(path);
      if (!inside(resolved)) {
        const shown = resolved === path ? `'${path}'` : `'${path}' (which resolves to '${resolved}')`;
        throw new Error(
          `option '${option}': ${shown} is outside the directories pipelines may use here (${real.join(", ") || "none"}); ${hint}`,
        );
      }
      return resolved;
    },
  };
}
