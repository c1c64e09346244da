/**
 * Locations and names: parsing `path` (local, file://, s3://), strftime over
 * event time for `partitioning.time_pattern`, and the file names the sink
 * gives its files (which also say which subtask owns an unfinished one).
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

export type Location =
  | { kind: "local"; dir: string }
  | { kind: "s3"; bucket: string; prefix: string; endpoint?: string; region?: string };

function bucketAndPrefix(rest: string, path: string): { bucket: string; prefix: string } {
  const slash = rest.indexOf("/");
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const prefix = slash < 0 ? "" : rest.slice(slash + 1).replace(/^\/+|\/+$/g, "");
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new Error(`option 'path': '${bucket}' in '${path}' is not a valid S3 bucket name (write s3://bucket/prefix)`);
  }
  return { bucket, prefix };
}

/**
 * Parses the `path` option; throws a message naming it. Besides local paths and
 * s3://bucket/prefix it takes the URL forms Arroyo documents:
 * https://bucket.s3.region.amazonaws.com/prefix, https://s3.region.amazonaws.com/bucket/prefix
 * and s3::http(s)://host:port/bucket/prefix for an S3-compatible endpoint.
 */
export function parseLocation(path: string): Location {
  const p = path.trim();
  if (p === "") throw new Error("option 'path' is empty; give a directory, file:///dir or s3://bucket/prefix");
  if (/^s3a?:\/\//i.test(p)) return { kind: "s3", ...bucketAndPrefix(p.replace(/^s3a?:\/\//i, ""), p) };
  const custom = /^s3::(https?:\/\/[^/]+)\/(.*)$/i.exec(p);
  if (custom) return { kind: "s3", ...bucketAndPrefix(custom[2]!, p), endpoint: custom[1]! };
  const virtualHost = /^https:\/\/([a-z0-9.-]+)\.s3[.-]([a-z0-9-]+)\.amazonaws\.com(?:\/(.*))?$/i.exec(p);
  if (virtualHost) {
    return { kind: "s3", ...bucketAndPrefix(`${virtualHost[1]}/${virtualHost[3] ?? ""}`, p), region: virtualHost[2]! };
  }
  const pathStyle = /^https:\/\/s3[.-]([a-z0-9-]+)\.amazonaws\.com\/(.*)$/i.exec(p);
  if (pathStyle) return { kind: "s3", ...bucketAndPrefix(pathStyle[2]!, p), region: pathStyle[1]! };
  if (/^file:\/\//i.test(p)) {
    try {
      return { kind: "local", dir: fileURLToPath(p) };
    } catch (err) {
      throw new Error(`option 'path': '${p}' is not a valid file URL (${(err as Error).message}); write file:///absolute/dir`);
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) {
    throw new Error(
      `option 'path': scheme of '${p}' is not supported; use a local directory, file:///dir, s3://bucket/prefix or s3::http://host:port/bucket/prefix`,
    );
  }
  return { kind: "local", dir: resolve(p) };
}

const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** Compiles a strftime pattern (UTC) to a function of event time in µs. */
export function compileTimePattern(pattern: string): (micros: number) => string {
  const pieces: ((d: Date) => string)[] = [];
  let lit = "";
  const flush = () => {
    if (lit) {
      const s = lit;
      pieces.push(() => s);
      lit = "";
    }
  };
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch !== "%") {
      lit += ch;
      continue;
    }
    const spec = pattern[++i];
    let piece: ((d: Date) => string) | null;
    switch (spec) {
      case "Y": piece = (d) => String(d.getUTCFullYear()); break;
      case "y": piece = (d) => pad(d.getUTCFullYear() % 100); break;
      case "m": piece = (d) => pad(d.getUTCMonth() + 1); break;
      case "d": piece = (d) => pad(d.getUTCDate()); break;
      case "H": piece = (d) => pad(d.getUTCHours()); break;
      case "M": piece = (d) => pad(d.getUTCMinutes()); break;
      case "S": piece = (d) => pad(d.getUTCSeconds()); break;
      case "j": piece = (d) => pad(Math.floor((d.getTime() - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, 3); break;
      case "F": piece = (d) => `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`; break;
      case "%": lit += "%"; piece = null; break;
      default:
        throw new Error(
          `option 'partitioning.time_pattern': unknown directive '%${spec ?? ""}' in '${pattern}'; use %Y %y %m %d %H %M %S %j %F or %%`,
        );
    }
    if (piece) {
      flush();
      pieces.push(piece);
    }
  }
  flush();
  return (micros) => {
    const d = new Date(Math.floor(micros / 1000));
    let s = "";
    for (const p of pieces) s += p(d);
    return s;
  };
}

/** Recent segments by value: partition values repeat row after row (escaping each was 10% of q10's CPU). */
const segments = new Map<string, string>();

/** Makes a value safe as one path segment (Hive style `name=value`). */
export function partitionValue(v: unknown): string {
  if (v === null || v === undefined) return "__NULL__";
  const s = typeof v === "object" ? JSON.stringify(v) : String(v);
  let safe = segments.get(s);
  if (safe === undefined) {
    safe = s.replace(/[\/\\%\x00-\x1f]/g, (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase());
    if (segments.size >= 4096) segments.clear();
    segments.set(s, safe);
  }
  return safe;
}

/**
 * File names: `<prefix><run>-<subtask>-<seq><suffix>.<ext>`. `run` is unique per
 * writer start, so names never collide across restarts; `subtask` says which
 * subtask owns a file that was left unfinished.
 */
export class FileNamer {
  private seq = 0;
  private readonly run: string;
  private readonly pattern: RegExp;
  constructor(
    private readonly prefix: string,
    private readonly suffix: string,
    private readonly ext: string,
    private readonly subtask: number,
  ) {
    this.run = Date.now().toString(36).padStart(9, "0") + Math.floor(Math.random() * 36 ** 4).toString(36).padStart(4, "0");
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    this.pattern = new RegExp(`^${esc(prefix)}[0-9a-z]{13}-(\\d+)-\\d+${esc(suffix)}\\.${esc(ext)}$`);
  }

  next(): string {
    return `${this.prefix}${this.run}-${this.subtask}-${this.seq++}${this.suffix}.${this.ext}`;
  }

  /** The subtask that wrote a file of this name, or null when the name is not one of ours. */
  ownerOf(fileName: string): number | null {
    const m = this.pattern.exec(fileName);
    return m ? Number(m[1]) : null;
  }
}

/**
 * Splits a source's `path` at its first segment holding a glob character:
 * `s3://b/logs/2024-*\/*.json` → base `s3://b/logs`, pattern `2024-*\/*.json`
 * (matched against paths under the base). No glob: the whole path, pattern null.
 */
export function splitGlob(path: string): { base: string; pattern: string | null } {
  const p = path.trim();
  const parts = p.split("/");
  // The scheme and bucket (s3://bucket, s3::http://host) are never glob segments.
  const first = /^[a-z][a-z0-9+.-]*:/i.test(p) ? (p.startsWith("s3::") ? 4 : 3) : 0;
  for (let i = Math.min(first, parts.length); i < parts.length; i++) {
    if (/[*?[{]/.test(parts[i]!)) {
      const base = parts.slice(0, i).join("/") || (p.startsWith("/") ? "/" : ".");
      return { base, pattern: parts.slice(i).join("/") };
    }
  }
  return { base: p, pattern: null };
}
