/**
 * The control plane's commands of the `runnel` CLI. They talk to its
 * database directly — DATABASE_URL, or the embedded PGlite under
 * RUNNEL_DATA_DIR (./data), which only one process may open at a time — so
 * they work before the first start and without any token: whoever can run
 * them can read the database anyway.
 *
 *   runnel migrate                      apply pending migrations
 *   runnel token create --name N [--role admin|editor|viewer]
 *   runnel token list | runnel token delete <id>
 *   runnel secrets rotate-key           re-seal connection profiles' secrets with a new key
 */
import { eq } from "drizzle-orm";
import { chmodSync, copyFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openDatabase, redact, type Database } from "./db/connect.ts";
import { connectionProfiles } from "./db/schema.ts";
import { privateDir, privateUmask } from "./security/private-files.ts";
import { isRole, ROLES } from "./security/roles.ts";
import { KEY_FILE, NEXT_KEY_FILE, PREVIOUS_KEY_FILE, SecretBox, newSecretKey } from "./security/secret-box.ts";
import { UserError } from "./services/errors.ts";
import { createToken, deleteToken, listTokens } from "./services/tokens.ts";
import { settingsFromEnv } from "./settings.ts";

export const CONTROL_PLANE_USAGE = `  runnel migrate                     apply the control plane's pending database migrations (DATABASE_URL, or PGlite under ./data)
  runnel token create --name NAME [--role admin|editor|viewer]
                                     create an API token (admin unless --role says otherwise) and print it once
  runnel token list                  list the stored API tokens (without the tokens)
  runnel token delete ID             revoke a token
  runnel secrets rotate-key          re-seal the connection profiles' secrets with a new key
`;

class CommandError extends Error {}

function flagValue(argv: string[], name: string): string | undefined {
  const i = argv.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (i < 0) return undefined;
  const a = argv[i]!;
  const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : argv[i + 1];
  if (v === undefined || v.startsWith("--")) throw new CommandError(`${name} needs a value`);
  return v;
}

async function withDatabase<T>(work: (database: Database) => Promise<T>): Promise<T> {
  privateUmask();
  const url = process.env.DATABASE_URL || undefined;
  const { dataDir } = settingsFromEnv();
  if (!url) privateDir(dataDir);
  const database = await openDatabase({ url, dataDir });
  try {
    return await work(database);
  } finally {
    await database.close();
  }
}

async function migrate(): Promise<number> {
  const url = process.env.DATABASE_URL || undefined;
  const { dataDir } = settingsFromEnv();
  console.error(`applying migrations to ${url ? `PostgreSQL at ${redact(url)}` : `embedded PGlite under ${dataDir}`}…`);
  await withDatabase(async () => {});
  console.error("the database is up to date");
  return 0;
}

async function token(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case "create": {
      const name = flagValue(rest, "--name");
      if (!name) throw new CommandError("name the token: runnel token create --name <who or what uses it>");
      const role = (flagValue(rest, "--role") ?? "admin").toLowerCase();
      if (!isRole(role)) throw new CommandError(`--role must be one of ${ROLES.join(", ")}, got '${role}'`);
      const made = await withDatabase((d) => createToken(d.db, name, role));
      console.error(`created API token ${made.id} '${made.name}' with the ${made.role} role; it is shown once, here (only its hash is stored):`);
      console.log(made.token);
      return 0;
    }
    case "list": {
      const rows = await withDatabase((d) => listTokens(d.db));
      if (rows.length === 0) console.error("no stored API tokens (RUNNEL_API_TOKENS may hold others)");
      for (const r of rows) console.log(`${r.id}\t${r.role}\t${r.name}\t${new Date(r.createdAt / 1000).toISOString()}`);
      return 0;
    }
    case "delete": {
      const id = rest.find((a) => !a.startsWith("-"));
      if (!id) throw new CommandError("name the token to delete: runnel token delete <id> (runnel token list shows them)");
      const row = await withDatabase((d) => deleteToken(d.db, id));
      console.error(`deleted API token ${row.id} '${row.name}'; running control planes refuse it within 2 s`);
      return 0;
    }
    default:
      throw new CommandError(`unknown token command '${sub ?? ""}'; use create, list or delete`);
  }
}

/**
 * A new key, and every profile's secrets re-sealed with it in one
 * transaction. With a key file: the new key is written beside it first
 * (secret.key.next), then takes its place, the old one kept as
 * secret.key.previous; an interrupted rotation is finished by running it
 * again. With RUNNEL_SECRET_KEY: the new key is printed, for the operator to
 * set on every control plane.
 */
async function rotateKey(): Promise<number> {
  const settings = settingsFromEnv();
  const newKey = newSecretKey();
  return withDatabase(async (database) => {
    const box = await SecretBox.open(settings);
    const fromFile = !settings.secretKey;
    if (fromFile) writeFileSync(join(settings.dataDir, NEXT_KEY_FILE), `${newKey}\n`, { mode: 0o600 });
    const next = await box.withCurrentKey(newKey);
    const count = await database.db.transaction(async (tx) => {
      const rows = await tx.select().from(connectionProfiles);
      for (const row of rows) {
        const context = `profile:${row.id}`;
        const values = await next.unseal(row.secrets, context);
        await tx.update(connectionProfiles).set({ secrets: await next.seal(values, context) }).where(eq(connectionProfiles.id, row.id));
      }
      return rows.length;
    });
    if (fromFile) {
      const current = join(settings.dataDir, KEY_FILE);
      const previous = join(settings.dataDir, PREVIOUS_KEY_FILE);
      copyFileSync(current, previous);
      chmodSync(previous, 0o600);
      renameSync(join(settings.dataDir, NEXT_KEY_FILE), current);
      console.error(
        `re-sealed the secrets of ${count} connection profile${count === 1 ? "" : "s"} with key ${next.currentKeyId}, now in ${current}; ` +
          `the old key (${box.currentKeyId}) stays in ${previous} until you delete it. Running control planes pick the new key up by themselves.`,
      );
      return 0;
    }
    console.error(
      `re-sealed the secrets of ${count} connection profile${count === 1 ? "" : "s"} with the new key ${next.currentKeyId} (below). ` +
        `Set RUNNEL_SECRET_KEY to it on every control plane, with RUNNEL_SECRET_KEY_PREVIOUS set to the old one until all of them have restarted.`,
    );
    console.log(newKey);
    return 0;
  });
}

async function secrets(argv: string[]): Promise<number> {
  if (argv[0] === "rotate-key") return rotateKey();
  throw new CommandError(`unknown secrets command '${argv[0] ?? ""}'; use rotate-key`);
}

/** Runs `runnel <command> ...` for the control plane's commands; the exit code. */
export async function controlPlaneCommand(command: string, argv: string[]): Promise<number> {
  try {
    if (command === "migrate") return await migrate();
    if (command === "token") return await token(argv);
    if (command === "secrets") return await secrets(argv);
    throw new CommandError(`unknown command '${command}'`);
  } catch (err) {
    if (err instanceof CommandError) {
      console.error(`error: ${err.message}\n\n${CONTROL_PLANE_USAGE}`);
      return 2;
    }
    if (err instanceof UserError) {
      console.error(`error: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
