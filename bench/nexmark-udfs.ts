/** q14's UDF, in TypeScript: how many times `c` occurs in `s` (Nexmark's count_char). */
import { definePlugin, defineUdf, t } from "../core/plugin-api/index.ts";

export function countChar(s: string, c: string): number {
  if (c.length === 0) return 0;
  let n = 0;
  for (let i = s.indexOf(c); i >= 0; i = s.indexOf(c, i + c.length)) n++;
  return n;
}

export const nexmarkUdfs = definePlugin({
  name: "nexmark-udfs",
  udfs: [defineUdf({ name: "count_char", args: [t.string(), t.string()], returns: t.bigint(), fn: countChar, strict: true })],
});
