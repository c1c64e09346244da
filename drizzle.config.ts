import { defineConfig } from "drizzle-kit";

// drizzle-kit reads the schema in code and writes SQL migrations to migrations/.
export default defineConfig({
  dialect: "postgresql",
  schema: "./control-plane/db/schema.ts",
  out: "./migrations",
});
