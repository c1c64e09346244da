/**
 * Regular expressions in the Rust `regex` dialect DataFusion uses, run on
 * JavaScript's engine. The pattern is translated so that the constructs whose
 * meaning differs behave as in Rust (`\d`, `\w`, `\s`, `\b` are Unicode-aware;
 * `.` stops only at `\n`; `$` does not match before a final newline), and what
 * Rust rejects (look-around, backreferences) is refused instead of silently
 * accepted. Replacement strings use Rust's `$1`, `${name}`, `$$` and
 * DataFusion's `\1`.
 */
import { ExprError } from "./values.ts";

const WORD = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";
const POSIX: Record<string, string> = {
  alnum: "0-9A-Za-z", alpha: "A-Za-z", ascii: "\\x00-\\x7F", blank: "\\t ", cntrl: "\\x00-\\x1F\\x7F", digit: "0-9",
  graph: "!-~", lower: "a-z", print: " -~", punct: "!-\\/:-@\\[-`{-~", space: "\\t\\n\\v\\f\\r ", upper: "A-Z",
  word: "0-9A-Za-z_", xdigit: "0-9A-Fa-f",
};

export interface RegexFlags {
  i: boolean;
  m: boolean;
  s: boolean;
  x: boolean;
  /** Replace every match (regexp_replace's 'g'). */
  g: boolean;
}

/** Reads a DataFusion flags argument: i, m, s, x (and g where `allowGlobal`); anything else is an error. */
export function parseFlags(flags: string, fn: string, allowGlobal: boolean): RegexFlags {
  const out: RegexFlags = { i: false, m: false, s: false, x: false, g: false };
  for (const c of flags) {
    if (c === "i" || c === "m" || c === "s" || c === "x") out[c] = true;
    else if (c === "g" && allowGlobal) out.g = true;
    else if (c === "g") throw new ExprError(`${fn}() does not support the "global" option`);
    else throw new ExprError(`${fn}(): unsupported regex flag '${c}'; use i, m, s or x${allowGlobal ? " (and g to replace every match)" : ""}`);
  }
  return out;
}

/** Translates a Rust regex into JavaScript source (for the `u` flag); throws an ExprError for what Rust would reject or Runnel cannot honour. */
export function translateRegex(pattern: string, flagsIn: RegexFlags): { source: string; ignoreCase: boolean } {
  const flags = { ...flagsIn };
  const fail = (at: number, what: string): never => {
    throw new ExprError(`regular expression '${pattern}' at position ${at + 1}: ${what}`);
  };
  let i = 0;
  // Leading inline flags: (?i), (?ms)...
  const inline = /^\(\?([imsxU-]+)\)/.exec(pattern);
  if (inline) {
    let on = true;
    for (const c of inline[1]!) {
      if (c === "-") on = false;
      else if (c === "U") fail(1, "the U (swap greed) flag is not supported");
      else flags[c as "i" | "m" | "s" | "x"] = on;
    }
    i = inline[0].length;
  }
  let out = "";
  const dot = () => (flags.s ? "[\\s\\S]" : "[^\\n]");
  while (i < pattern.length) {
    const c = pattern[i]!;
    if (flags.x && /\s/.test(c)) {
      i++;
      continue;
    }
    if (flags.x && c === "#") {
      while (i < pattern.length && pattern[i] !== "\n") i++;
      continue;
    }
    switch (c) {
      case ".":
        out += dot();
        i++;
        continue;
      case "^":
        out += flags.m ? "(?<![^\\n])" : "(?<![\\s\\S])";
        i++;
        continue;
      case "$":
        out += flags.m ? "(?![^\\n])" : "(?![\\s\\S])";
        i++;
        continue;
      case "[": {
        const cls = translateClass(pattern, i, fail);
        out += cls.source;
        i = cls.end;
        continue;
      }
      case "(": {
        if (pattern[i + 1] !== "?") {
          out += "(";
          i++;
          continue;
        }
        const rest = pattern.slice(i + 2);
        if (rest.startsWith(":")) {
          out += "(?:";
          i += 3;
        } else if (rest.startsWith("P<") || rest.startsWith("<")) {
          const m = /^P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
          if (!m) {
            if (/^<[=!]/.test(rest)) fail(i, "look-behind is not supported (as in DataFusion)");
            fail(i, "invalid group name");
          }
          out += `(?<${m![1]}>`;
          i += 2 + m![0].length;
        } else if (rest.startsWith("=") || rest.startsWith("!")) {
          fail(i, "look-ahead is not supported (as in DataFusion)");
        } else {
          fail(i, "inline flags are supported only at the start of the pattern, like (?i)abc");
        }
        continue;
      }
      case "\\": {
        const e = translateEscape(pattern, i, false, fail);
        out += e.source;
        i = e.end;
        continue;
      }
      default:
        out += c;
        i++;
    }
  }
  try {
    new RegExp(out, flags.i ? "iu" : "u");
  } catch (err) {
    fail(0, `not a valid regular expression (${(err as Error).message})`);
  }
  return { source: out, ignoreCase: flags.i };
}

function translateEscape(p: string, i: number, inClass: boolean, fail: (at: number, what: string) => never): { source: string; end: number } {
  const e = p[i + 1];
  if (e === undefined) return fail(i, "the pattern ends with a lone backslash");
  const at = (source: string, len = 2) => ({ source, end: i + len });
  switch (e) {
    case "d":
      return at("\\p{Nd}");
    case "D":
      return inClass ? fail(i, "\\D inside [...] is not supported; use [^...] or (?:...|\\D)") : at("\\P{Nd}");
    case "w":
      return at(inClass ? WORD : `[${WORD}]`);
    case "W":
      return inClass ? fail(i, "\\W inside [...] is not supported") : at(`[^${WORD}]`);
    case "s":
      return at("\\p{White_Space}");
    case "S":
      return inClass ? fail(i, "\\S inside [...] is not supported") : at("\\P{White_Space}");
    case "b":
      if (inClass) return at("\\x08");
      return at(`(?:(?<=[${WORD}])(?![${WORD}])|(?<![${WORD}])(?=[${WORD}]))`);
    case "B":
      if (inClass) return fail(i, "\\B inside [...] is not valid");
      return at(`(?:(?<=[${WORD}])(?=[${WORD}])|(?<![${WORD}])(?![${WORD}]))`);
    case "A":
      return inClass ? fail(i, "\\A inside [...] is not valid") : at("(?<![\\s\\S])");
    case "z":
      return inClass ? fail(i, "\\z inside [...] is not valid") : at("(?![\\s\\S])");
    case "a":
      return at("\\x07");
    case "p":
    case "P": {
      let name: string;
      let end: number;
      if (p[i + 2] === "{") {
        const close = p.indexOf("}", i + 3);
        if (close < 0) return fail(i, "unclosed \\p{...}");
        name = p.slice(i + 3, close);
        end = close + 1;
      } else {
        name = p[i + 2] ?? "";
        end = i + 3;
      }
      for (const candidate of [name, `Script=${name}`, name.replace(/[\s_-]/g, "")]) {
        try {
          new RegExp(`\\p{${candidate}}`, "u");
          return { source: `\\${e}{${candidate}}`, end };
        } catch {
          // try the next spelling
        }
      }
      return fail(i, `unknown Unicode class \\${e}{${name}}`);
    }
    case "x":
    case "u":
    case "U": {
      if (p[i + 2] === "{") {
        const close = p.indexOf("}", i + 3);
        const hex = p.slice(i + 3, close);
        if (close < 0 || !/^[0-9a-fA-F]{1,8}$/.test(hex)) return fail(i, "invalid \\x{...} escape");
        return { source: `\\u{${hex}}`, end: close + 1 };
      }
      const n = e === "x" ? 2 : e === "u" ? 4 : 8;
      const hex = p.slice(i + 2, i + 2 + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) return fail(i, `\\${e} needs ${n} hex digits`);
      return { source: `\\u{${hex}}`, end: i + 2 + n };
    }
  }
  if (/[1-9]/.test(e)) return fail(i, "backreferences are not supported (as in DataFusion)");
  if (e === "0") return fail(i, "octal escapes are not supported; use \\x00");
  if ("tnrfv".includes(e)) return at("\\" + e);
  // Escaped metacharacters: JavaScript's u mode accepts `\-` only inside a class, and never `\#`, `\&`, `\~` or `\ `.
  if (/[\\.+*?()|[\]{}^$/]/.test(e)) return at("\\" + e);
  if (e === "-") return at(inClass ? "\\-" : "-");
  if (/[#&~ ]/.test(e)) return at(e);
  return fail(i, `unknown escape \\${e}`);
}

function translateClass(p: string, start: number, fail: (at: number, what: string) => never): { source: string; end: number } {
  let i = start + 1;
  let out = "[";
  if (p[i] === "^") {
    out += "^";
    i++;
  }
  let first = true;
  for (;;) {
    const c = p[i];
    if (c === undefined) return fail(start, "unclosed [");
    if (c === "]" && !first) {
      i++;
      break;
    }
    first = false;
    if (c === "[") {
      const posix = /^\[:(\^?)([a-z]+):\]/.exec(p.slice(i));
      if (posix) {
        if (posix[1]) fail(i, "negated POSIX classes [:^...:] are not supported");
        const ranges = POSIX[posix[2]!];
        if (!ranges) fail(i, `unknown POSIX class [:${posix[2]}:]`);
        out += ranges;
        i += posix[0].length;
        continue;
      }
      fail(i, "nested classes [...[...]] are not supported");
    }
    if ((c === "&" && p[i + 1] === "&") || (c === "-" && p[i + 1] === "-") || (c === "~" && p[i + 1] === "~")) {
      fail(i, "class set operations (&&, --, ~~) are not supported");
    }
    if (c === "\\") {
      const e = translateEscape(p, i, true, fail);
      out += e.source;
      i = e.end;
      continue;
    }
    out += c === "]" || c === "/" ? "\\" + c : c;
    i++;
  }
  return { source: out + "]", end: i };
}

const cache = new Map<string, RegExp>();

/** A compiled regex for a Rust pattern and flags (cached); `global` adds JavaScript's g flag. */
export function rustRegex(pattern: string, flags: RegexFlags, global = false): RegExp {
  const key = `${flags.i ? "i" : ""}${flags.m ? "m" : ""}${flags.s ? "s" : ""}${flags.x ? "x" : ""}${global ? "g" : ""}/${pattern}`;
  let re = cache.get(key);
  if (!re) {
    re = compileRustRegex(pattern, flags, global);
    if (cache.size > 1000) cache.clear();
    cache.set(key, re);
  }
  re.lastIndex = 0;
  return re;
}

/** A new compiled regex for a Rust pattern and flags, not shared: a call site whose pattern is a constant keeps its own. */
export function compileRustRegex(pattern: string, flags: RegexFlags, global = false): RegExp {
  const t = translateRegex(pattern, flags);
  return new RegExp(t.source, (t.ignoreCase ? "iu" : "u") + (global ? "g" : ""));
}

type ReplacementPart = string | { group: string | number };

/**
 * A replacement template: DataFusion first turns `\1` into `${1}`, then Rust
 * expands `$name` / `${name}` (a name is letters, digits and `_`; a missing
 * group gives nothing) and `$$`.
 */
export function compileReplacement(template: string): ReplacementPart[] {
  const t = template.replace(/\\(\d*)/g, (_, d) => `\${${d}}`);
  const parts: ReplacementPart[] = [];
  let text = "";
  for (let i = 0; i < t.length; i++) {
    if (t[i] !== "$") {
      text += t[i];
      continue;
    }
    if (t[i + 1] === "$") {
      text += "$";
      i++;
      continue;
    }
    let name: string | null = null;
    let end = i;
    if (t[i + 1] === "{") {
      const close = t.indexOf("}", i + 2);
      if (close > i + 2) {
        name = t.slice(i + 2, close);
        end = close;
      }
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(t.slice(i + 1));
      if (m) {
        name = m[0];
        end = i + m[0].length;
      }
    }
    if (name === null) {
      text += "$";
      continue;
    }
    if (text) parts.push(text);
    text = "";
    parts.push({ group: /^\d+$/.test(name) ? Number(name) : name });
    i = end;
  }
  if (text) parts.push(text);
  return parts;
}

export function expandReplacement(parts: ReplacementPart[], match: RegExpExecArray): string {
  let out = "";
  for (const p of parts) {
    if (typeof p === "string") out += p;
    else out += (typeof p.group === "number" ? match[p.group] : match.groups?.[p.group]) ?? "";
  }
  return out;
}

// ---------------------------------------------------------------- LIKE

const likeCache = new Map<string, RegExp>();

/** LIKE / ILIKE pattern: `%` any run of characters, `_` one character, the escape character (`\` unless ESCAPE says) escapes the next. */
export function likeRegex(pattern: string, caseInsensitive: boolean, escape = "\\"): RegExp {
  const key = (caseInsensitive ? "i" : "s") + escape + "\u0000" + pattern;
  let re = likeCache.get(key);
  if (!re) {
    let src = "";
    const chars = [...pattern];
    for (let i = 0; i < chars.length; i++) {
      const c = chars[i]!;
      if (c === escape && i + 1 < chars.length) src += escapeLiteral(chars[++i]!);
      else if (c === "%") src += "[\\s\\S]*";
      else if (c === "_") src += "[\\s\\S]";
      else src += escapeLiteral(c);
    }
    re = new RegExp(`^${src}$`, caseInsensitive ? "iu" : "u");
    if (likeCache.size > 1000) likeCache.clear();
    likeCache.set(key, re);
  }
  return re;
}

function escapeLiteral(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
