/** A row as `{name: value, ...}` for error messages that must name the record at fault. */
import type { Field, Row } from "../plugin-api/index.ts";

export function describeRow(row: Row, fields: Field[]): string {
  const value = (v: unknown) => (v instanceof Uint8Array ? `<${v.byteLength} bytes>` : (JSON.stringify(v) ?? String(v)));
  return `{${row.map((v, i) => `${fields[i]?.name ?? `#${i + 1}`}: ${value(v)}`).join(", ")}}`;
}
