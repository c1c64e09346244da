/**
 * Write-only secrets in pipelines' SQL. Options the connector or format
 * declares secret (`opt.string({ secret: true })`), options named like
 * secrets (password, secret, token...) and passwords inside URLs
 * (`postgres://user:pw@host`) are replaced by '***' wherever the API returns
 * a query, and their values are blotted out of messages (failures, job
 * events) before those are stored.
 */
import type { PluginRegistry } from "../../core/registry/registry.ts";
import { ENV_REF } from "../../core/sql/tables.ts";
import { parseStatements } from "../../core/sql/statements.ts";

export const MASK = "***";

/** Option names taken for secrets whatever the connector declares. */
const SECRET_NAME = /(^|[._-])(password|passwd|pwd|secret|secret_access_key|token|session_token|api_key|apikey|private_key|credentials?)$/i;
/** The password of `scheme://user:password@host`. */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^/\s:@'"]*:)([^@/\s'"]+)(@)/gi;

/** Secrets shorter than this are not blotted out of free text (it would garble every message). */
const MIN_REDACTED = 4;

const onlyEnvRefs = (s: string) => s.replace(ENV_REF, "").trim() === "";

/** Where the raw token of an option value ends: a quoted string (with '' escapes), or a bare word or number. */
function valueEnd(sql: string, start: number): number {
  let i = start;
  if (sql[i] === "E" || sql[i] === "e") i++;
  if (sql[i] !== "'") return start + (/^[^\s,)]+/.exec(sql.slice(start, start + 256))?.[0].length ?? 0);
  for (i++; i < sql.length; i++) {
    if (sql[i] !== "'") continue;
    if (sql[i + 1] === "'") i++;
    else return i + 1;
  }
  return sql.length;
}

export interface MaskedQuery {
  /** The query with secret values replaced by '***'. */
  masked: string;
  /** The secret values found (to blot out of messages). */
  values: string[];
}

export function isSecretOption(registry: PluginRegistry, connector: string | undefined, format: string | undefined, key: string): boolean {
  if (SECRET_NAME.test(key)) return true;
  const c = connector ? registry.connector(connector) : undefined;
  if (c?.options[key]?.secret) return true;
  const f = format ? registry.format(format) : undefined;
  const bare = f && key.startsWith(`${f.name}.`) ? key.slice(f.name.length + 1) : key;
  return !!f?.options[bare]?.secret;
}

/** Masks secret option values in `query`; a query that does not parse has URL passwords masked only. */
export function maskQuery(query: string, registry: PluginRegistry): MaskedQuery {
  const values = new Set<string>();
  const edits: { start: number; end: number; text: string }[] = [];
  let statements: ReturnType<typeof parseStatements> = [];
  try {
    statements = parseStatements(query);
  } catch {
    // Stored queries parsed when they were created; this only guards against a parser change.
  }
  for (const s of statements) {
    if (s.kind !== "create_table") continue;
    const connector = s.options.find((o) => o.key === "connector")?.value;
    const format = s.options.find((o) => o.key === "format")?.value;
    for (const o of s.options) {
      const end = valueEnd(query, o.valueOffset);
      if (isSecretOption(registry, connector, format, o.key)) {
        if (onlyEnvRefs(o.value)) continue;
        values.add(o.value);
        edits.push({ start: o.valueOffset, end, text: `'${MASK}'` });
        continue;
      }
      const raw = query.slice(o.valueOffset, end);
      const masked = raw.replace(URL_PASSWORD, (all, head: string, pw: string, at: string) => {
        if (onlyEnvRefs(pw)) return all;
        values.add(pw);
        return `${head}${MASK}${at}`;
      });
      if (masked !== raw) edits.push({ start: o.valueOffset, end, text: masked });
    }
  }
  let masked = "";
  let at = 0;
  for (const e of edits.sort((a, b) => a.start - b.start)) {
    masked += query.slice(at, e.start) + e.text;
    at = e.end;
  }
  masked += query.slice(at);
  // Outside the options (a comment, a broken statement), URLs still lose their passwords.
  masked = masked.replace(URL_PASSWORD, (all, head: string, pw: string, at2: string) => {
    if (pw === MASK || onlyEnvRefs(pw)) return all;
    values.add(pw);
    return `${head}${MASK}${at2}`;
  });
  return { masked, values: [...values] };
}

/** Replaces every occurrence of the secret `values` in `text` (and URL passwords) with '***'. */
export function redactText(text: string, values: Iterable<string>): string {
  let out = text;
  // Longest first, so a secret containing another is blotted out whole.
  for (const v of [...values].filter((v) => v.length >= MIN_REDACTED).sort((a, b) => b.length - a.length)) out = out.split(v).join(MASK);
  return out.replace(URL_PASSWORD, (all, head: string, pw: string, at: string) => (pw === MASK || onlyEnvRefs(pw) ? all : `${head}${MASK}${at}`));
}

/** A profile's non-secret settings as the API shows them: URL passwords masked. */
export function maskConfigValues(config: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [k, redactText(v, [])]));
}
