/**
 * TLS between a job's processes (RUNNEL_CLUSTER_TLS_CERT/_KEY/_CA): workers on
 * other loopback addresses, as other hosts, run the job over mutual TLS and give
 * what one process gives; a worker that knows the job secret but speaks plain
 * TCP, or presents a certificate another CA signed, is refused.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { clusterTlsFromEnv } from "../../../core/cluster/tls.ts";
import { CLI, freePort, REPO, runCli, startCli, tempDir, writeSql } from "../../kit/cli.ts";
import { AGGREGATES, results } from "./aggregates.ts";

setDefaultTimeout(180_000);

const spawned: ReturnType<typeof Bun.spawn>[] = [];
afterAll(() => {
  for (const p of spawned) p.kill("SIGKILL");
});

function openssl(args: string[], cwd: string): void {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr.toString()}`);
}

/** A CA and a certificate it signs for the loopback addresses the test's "hosts" use. */
function certificates(dir: string, name: string): Record<string, string> {
  const san = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,IP:127.0.0.4";
  writeFileSync(join(dir, `${name}.ext`), `${san}\n`);
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}-ca.key`, "-out", `${name}-ca.pem`, "-days", "2", "-subj", `/CN=${name} test CA`], dir);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name} worker`], dir);
  openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", `${name}-ca.pem`, "-CAkey", `${name}-ca.key`, "-CAcreateserial", "-out", `${name}.pem`, "-days", "2", "-extfile", `${name}.ext`], dir);
  return { RUNNEL_CLUSTER_TLS_CERT: join(dir, `${name}.pem`), RUNNEL_CLUSTER_TLS_KEY: join(dir, `${name}.key`), RUNNEL_CLUSTER_TLS_CA: join(dir, `${name}-ca.pem`) };
}

describe("TLS between a job's processes", () => {
  test("a partial setting is refused naming what is missing", () => {
    expect(() => clusterTlsFromEnv({ RUNNEL_CLUSTER_TLS_CERT: "/x.pem" })).toThrow(/RUNNEL_CLUSTER_TLS_KEY and RUNNEL_CLUSTER_TLS_CA not set/);
    expect(clusterTlsFromEnv({})).toBeNull();
  });

  test("workers on other addresses run the job over mutual TLS; plain TCP and another CA's certificate are refused", async () => {
    const certs = tempDir("runnel-cluster-tls-certs-");
    const tls = certificates(certs, "job");
    const rogue = certificates(certs, "rogue");
    const ref = tempDir("runnel-cluster-tls-ref-");
    expect((await runCli(["run", writeSql(ref, AGGREGATES(ref, 6000, 2000)), "--parallelism", "2", "--workers", "1", "--quiet"])).code).toBe(0);

    const dir = tempDir("runnel-cluster-tls-");
    const manager = `127.0.0.1:${await freePort()}`;
    const job = startCli(
      ["run", writeSql(dir, AGGREGATES(dir, 6000, 2000)), "--parallelism", "2", "--scheduler", "external", "--workers", "2", "--listen", manager, "--secret", "tls-test", "--state-dir", join(dir, "state"), "--checkpoint-interval", "200ms", "--quiet"],
      REPO,
      tls,
    );
    const jobErr = new Response(job.stderr as ReadableStream).text();
    void new Response(job.stdout as ReadableStream).text();
    const worker = (env: Record<string, string>, host: string, once = false) => {
      const w = Bun.spawn(["bun", CLI, "worker", "--manager", manager, "--secret", "tls-test", "--listen", `${host}:0`, ...(once ? ["--once"] : [])], {
        cwd: REPO,
        stdout: "ignore",
        stderr: "pipe",
        env: { ...process.env, ...env },
      });
      spawned.push(w);
      return w;
    };
    // Both know the secret; neither has a certificate the job's CA signed.
    const plain = worker({}, "127.0.0.4", true);
    const foreign = worker(rogue, "127.0.0.4", true);
    expect(await plain.exited).not.toBe(0);
    expect(await foreign.exited).not.toBe(0);
    worker(tls, "127.0.0.2");
    worker(tls, "127.0.0.3");
    expect(await job.exited).toBe(0);
    expect(await jobErr).not.toContain("worker 2");
    expect(results(dir)).toEqual(results(ref));
  });
});
