/** Writes the printed GraphQL schema to control-plane/schema.graphql (`bun run schema:print`); a test compares them. */
import { printSchema, lexicographicSortSchema } from "graphql";
import { join } from "node:path";
import { buildSchema } from "./graphql/yoga.ts";

export const SCHEMA_FILE = join(import.meta.dir, "schema.graphql");
export const printedSchema = () => printSchema(lexicographicSortSchema(buildSchema())) + "\n";

if (import.meta.main) {
  await Bun.write(SCHEMA_FILE, printedSchema());
  console.error(`wrote ${SCHEMA_FILE}`);
}
