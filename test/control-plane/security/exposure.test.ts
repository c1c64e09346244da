/**
 * Issue 8, probe 1 (open by default): without tokens the control plane
 * listens on loopback only and says so; listening elsewhere needs tokens (or
 * an opt-out that warns at every start); `runnel token create` bootstraps the
 * first admin token. On PGlite and on PostgreSQL.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { networkInterfaces } from "node:os";
import { runCli, tempDir } from "../../kit/cli.ts";
import { BACKENDS, spawnControlPlane, testControlPlane, stoppedAfterAll, type TestControlPlane } from "../../kit/control-plane.ts";
import { freshPostgresDatabase } from "../../kit/services.ts";

setDefaultTimeout(60_000);

const started = stoppedAfterAll<{ stop(): Promise<void> }>();

/** An address of this machine other than loopback, as another host on the network would use. */
const externalAddress = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === "IPv4" && !i.internal)?.address;

async function reachable(host: string, port: number): Promise<boolean> {
  try {
    await fetch(`http://${host}:${port}/api/v1/pipelines`, { signal: AbortSignal.timeout(5000) });
    return true;
  } catch {
    return false;
  }
}

const runnel = (args: string[], env: Record<string, string>) => runCli(args, { env });

for (const backend of BACKENDS) {
  describe(`exposure on ${backend}`, () => {
    test("without tokens, `bun run start` listens on 127.0.0.1 only and says so", async () => {
      const cp = await spawnControlPlane(backend);
      started.push(cp);
      expect(cp.stderr()).toContain("no API tokens: listening on 127.0.0.1 only");
      expect(cp.stderr()).toMatch(/listening on 127\.0\.0\.1:\d+/);
      const port = Number(new URL(cp.url).port);
      expect(await reachable("127.0.0.1", port)).toBe(true);
      if (externalAddress) expect(await reachable(externalAddress, port)).toBe(false);
      await cp.stop();
    });

    test("RUNNEL_HOST beyond loopback without any token: it refuses to start and says how to fix it", async () => {
      const refused = await testControlPlane(backend, { host: "0.0.0.0" }).then(
        (cp) => (started.push(cp), null),
        (err: Error) => err.message,
      );
      expect(refused).toContain("RUNNEL_HOST=0.0.0.0 would let anyone who reaches port");
      expect(refused).toContain("runnel token create");
      expect(refused).toContain("RUNNEL_ALLOW_UNAUTHENTICATED=1");
    });

    test("the opt-out flag listens open beyond loopback, with a warning at start", async () => {
      const cp = await testControlPlane(backend, { host: "0.0.0.0", allowUnauthenticated: true });
      started.push(cp);
      expect(cp.logs.join("\n")).toContain("WARNING: listening on 0.0.0.0 WITHOUT AUTHENTICATION");
      if (externalAddress) expect(await reachable(externalAddress, cp.port)).toBe(true);
    });

    test("`runnel token create` bootstraps an admin token; with it the server listens beyond loopback and asks for it", async () => {
      const dataDir = tempDir("runnel-cp-");
      const databaseUrl = backend === "postgres" ? await freshPostgresDatabase() : "";
      const made = await runnel(["token", "create", "--name", "ops"], { RUNNEL_DATA_DIR: dataDir, DATABASE_URL: databaseUrl });
      expect(made.code).toBe(0);
      expect(made.stderr).toContain("admin role");
      expect(made.stdout.trim()).toMatch(/^rnl_[A-Za-z0-9_-]{32}$/);
      const listed = await runnel(["token", "list"], { RUNNEL_DATA_DIR: dataDir, DATABASE_URL: databaseUrl });
      expect(listed.stdout.trim()).toMatch(/^tok_\w+\tadmin\tops\t/);

      const cp: TestControlPlane = await testControlPlane(backend, { host: "0.0.0.0" }, { dataDir, databaseUrl: databaseUrl || undefined });
      started.push(cp);
      expect(cp.logs.join("\n")).toContain("API tokens required on every request; listening on 0.0.0.0");
      const anonymous = await cp.gqlReply("{ viewer { name role } }");
      expect(anonymous.status).toBe(401);
      expect(await cp.gql("{ viewer { name role } }", {}, { authorization: `Bearer ${made.stdout.trim()}` })).toEqual({ viewer: { name: "ops", role: "ADMIN" } });
    });

    test("while it has no token it answers only requests addressed to localhost (no DNS rebinding)", async () => {
      const cp = await testControlPlane(backend);
      started.push(cp);
      const rebound = await fetch(`${cp.url}/api/v1/pipelines`, { headers: { host: `attacker.example:${cp.port}` } });
      expect(rebound.status).toBe(403);
      expect(((await rebound.json()) as any).error).toContain("answers only requests addressed to localhost");
      expect((await fetch(`${cp.url}/api/v1/pipelines`)).status).toBe(200);
    });
  });
}

test("the CLI refuses to open an embedded database a running control plane holds", async () => {
  const cp = await testControlPlane("pglite");
  started.push(cp);
  const r = await runnel(["token", "create", "--name", "late"], { RUNNEL_DATA_DIR: cp.dataDir, DATABASE_URL: "" });
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain(`is in use by process ${process.pid}`);
});
