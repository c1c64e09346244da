/**
 * Where the test services listen (started by scripts/services.sh, which
 * `bun run test` runs first). The same defaults as scripts/services/*.sh.
 */
export const services = {
  postgresUrl: process.env.RUNNEL_TEST_PG_URL ?? `postgres://postgres@127.0.0.1:${process.env.RUNNEL_TEST_PG_PORT ?? 15432}/postgres`,
};

/** A fresh database on the test PostgreSQL server, so test files never share tables. */
export async function freshPostgresDatabase(prefix = "runnel_test"): Promise<string> {
  const { SQL } = await import("bun");
  const admin = new SQL(services.postgresUrl);
  const name = `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`;
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.close();
  const url = new URL(services.postgresUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
