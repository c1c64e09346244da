/**
 * Request bodies as the seed's curl examples send them: JSON in which a string
 * may span lines (raw newlines and tabs inside a string are not valid JSON, but
 * the walk-through writes its SQL that way). We escape them and parse; any
 * other mistake is reported with its line and column.
 */
export class BodyError extends Error {}

function escapeControlCharsInStrings(text: string): string {
  let out = "";
  let inString = false;
  let escaped = false;
  for (const ch of text) {
    if (inString) {
      if (escaped) escaped = false;
      else if (ch === "\\") escaped = true;
      else if (ch === '"') inString = false;
      else if (ch === "\n") {
        out += "\\n";
        continue;
      } else if (ch === "\r") {
        out += "\\r";
        continue;
      } else if (ch === "\t") {
        out += "\\t";
        continue;
      }
    } else if (ch === '"') inString = true;
    out += ch;
  }
  return out;
}

function where(text: string, message: string): string {
  const m = /position (\d+)/.exec(message);
  if (!m) return "";
  const pos = Number(m[1]);
  const before = text.slice(0, pos).split("\n");
  return ` (line ${before.length}, column ${before.at(-1)!.length + 1})`;
}

/** The body as an object; an empty body is an error unless `optional`, when it reads as {}. */
export async function readJsonBody(request: Request, options: { optional?: boolean } = {}): Promise<Record<string, unknown>> {
  const text = await request.text();
  if (!text.trim()) {
    if (options.optional) return {};
    throw new BodyError("the request body is empty; send a JSON object");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    const lenient = escapeControlCharsInStrings(text);
    try {
      value = JSON.parse(lenient);
    } catch (err) {
      const message = (err as Error).message;
      throw new BodyError(`the request body is not valid JSON${where(lenient, message)}: ${message}`);
    }
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new BodyError("the request body must be a JSON object");
  return value as Record<string, unknown>;
}

/** Refuses fields the endpoint doesn't know, naming them and the valid ones. */
export function onlyFields(body: Record<string, unknown>, allowed: string[]): void {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length) throw new BodyError(`unknown field${unknown.length > 1 ? "s" : ""} ${unknown.map((u) => `'${u}'`).join(", ")}; valid fields: ${allowed.join(", ")}`);
}
