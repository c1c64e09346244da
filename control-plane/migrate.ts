/** `bun run runnel migrate`: applies pending migrations to DATABASE_URL (or the embedded PGlite under RUNNEL_DATA_DIR, ./data). */
import { openDatabase, redact } from "./db/connect.ts";
import { settingsFromEnv } from "./settings.ts";

export async function migrateCommand(): Promise<number> {
  const url = process.env.DATABASE_URL || undefined;
  const { dataDir } = settingsFromEnv();
  const where = url ? `PostgreSQL at ${redact(url)}` : `embedded PGlite under ${dataDir}`;
  console.error(`applying migrations to ${where}…`);
  const database = await openDatabase({ url, dataDir });
  await database.close();
  console.error("the database is up to date");
  return 0;
}
