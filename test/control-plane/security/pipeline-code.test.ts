/**
 * Issue 8, probe 2 (UDF source runs inside the control plane): a UDF's module
 * code runs in a short-lived child process with an empty environment and a
 * scratch directory — never in the control plane, whose event loop (and so
 * its heartbeats and subscriptions) goes on meanwhile; that process is
 * bounded in time and memory. In the job, the UDF's worker holds only what
 * its pipeline needs: no API token, no other profile's secrets. On PGlite and
 * on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tempDir } from "../../kit/cli.ts";
import { BACKENDS, CREATE_PIPELINE, eventually, spawnControlPlane, testControlPlane, type TestControlPlane } from "../../kit/control-plane.ts";

setDefaultTimeout(90_000);

const CREATE_UDF = `mutation ($name: String!, $definition: String!) {
  createUdf(input: { name: $name, definition: $definition }) { __typename ... on UserError { message } ... on OptionError { option } }
}`;

const alive = (pid: number) => existsSync(`/proc/${pid}`);

for (const backend of BACKENDS) {
  describe(`pipeline code on ${backend}`, () => {
    // The control plane's own environment holds an API token: the probes look for it where code runs.
    const token = `leak-probe-${backend}-token`;
    const auth = { authorization: `Bearer ${token}` };
    let cp: TestControlPlane;
    beforeAll(async () => {
      const previous = process.env.RUNNEL_API_TOKENS;
      process.env.RUNNEL_API_TOKENS = token;
      try {
        cp = await testControlPlane(backend, { validationTimeoutMs: 2000, validationMemoryMb: 256 });
      } finally {
        if (previous === undefined) delete process.env.RUNNEL_API_TOKENS;
        else process.env.RUNNEL_API_TOKENS = previous;
      }
    });
    afterAll(async () => cp?.stop());

    test("a UDF's module code runs in a child process with an empty environment and a scratch directory", async () => {
      const probe = join(tempDir("runnel-probe-"), "probe.json");
      const definition = `
        import { writeFileSync } from "node:fs";
        const id = Bun.spawnSync(["id"]).stdout.toString().trim();
        writeFileSync(${JSON.stringify(probe)}, JSON.stringify({ pid: process.pid, cwd: process.cwd(), env: Object.keys(process.env), id }));
        export default { args: ["BIGINT"], returns: "BIGINT", fn: (x) => x };`;
      const r = await cp.gql(CREATE_UDF, { name: "nosy", definition }, auth);
      expect(r.createUdf.__typename).toBe("UdfPayload");
      const seen = JSON.parse(readFileSync(probe, "utf8"));
      expect(seen.pid).not.toBe(process.pid);
      await eventually("the child to be gone (it is short-lived)", () => !alive(seen.pid));
      expect(seen.env.filter((k: string) => k !== "TMPDIR")).toEqual([]);
      expect(seen.cwd.startsWith(tmpdir())).toBe(true);
      expect(seen.cwd).not.toBe(process.cwd());
    });

    test("a UDF's worker sees neither the API tokens nor the secrets of profiles its pipeline does not use (the `leak` probe)", async () => {
      const profile = (name: string, connector: string, config: object, secrets: object) =>
        cp.gql(`mutation ($input: CreateConnectionProfileInput!) { createConnectionProfile(input: $input) { __typename } }`, { input: { name, connector, config, secrets } }, auth);
      await profile("other", "kafka", { bootstrap_servers: "localhost:9092", "auth.type": "sasl", "auth.username": "u" }, { "auth.password": "other-profile-secret" });
      await profile("ticks", "impulse", { event_rate: "200" }, { message_count: "3" });
      const leak = `export default { args: ["BIGINT"], returns: "TEXT", fn: (x) => JSON.stringify({ env: process.env, argv: process.argv }) };`;
      expect((await cp.gql(CREATE_UDF, { name: "leak", definition: leak }, auth)).createUdf.__typename).toBe("UdfPayload");
      const made = await cp.gql(
        CREATE_PIPELINE,
        { input: { name: "leak", udfs: ["leak"], query: `CREATE TABLE impulse WITH (connection_profile = 'ticks');\nSELECT leak(counter) AS leaked FROM impulse;` } },
        auth,
      );
      expect(made.createPipeline.__typename).toBe("PipelinePayload");
      const lines: string[] = [];
      const output = cp.ws({ authorization: `Bearer ${token}` }).iterate({ query: `subscription { pipelineOutput(pipelineId: "${made.createPipeline.pipeline.id}") { lines } }` });
      for await (const r of output) {
        lines.push(...(r.data as any).pipelineOutput.lines);
        if (lines.length >= 3) break;
      }
      const leaked = JSON.parse(JSON.parse(lines[0]!).leaked);
      const everything = lines.join("\n");
      expect(everything).not.toContain(token);
      expect(everything).not.toContain("other-profile-secret");
      expect(everything).not.toContain("RUNNEL_WORKER_CONFIG");
      expect(Object.keys(leaked.env).filter((k) => !["PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR"].includes(k) && !k.startsWith("LC_"))).toEqual([]);
    });

    test("module code that runs too long or grows too big is stopped, with a message naming the bound", async () => {
      const marker = join(tempDir("runnel-probe-"), "pid");
      const slow = `require("node:fs").writeFileSync(${JSON.stringify(marker)}, String(process.pid));
        const until = Date.now() + 30_000; while (Date.now() < until) {}
        export default { args: [], returns: "BIGINT", fn: () => 1 };`;
      const timedOut = await cp.gql(CREATE_UDF, { name: "slow", definition: slow }, auth);
      expect(timedOut.createUdf).toMatchObject({ __typename: "OptionError", option: "definition" });
      expect(timedOut.createUdf.message).toContain("validation took longer than 2 s and was stopped (RUNNEL_VALIDATION_TIMEOUT_MS)");
      await eventually("the slow child to be gone", () => !alive(Number(readFileSync(marker, "utf8"))));
      // Grows to 640 MB at most, so that where nothing stops it, it still ends.
      const big = `const hoard = []; for (let i = 0; i < 80; i++) hoard.push(new Float64Array(1 << 20).fill(i));
        export default { args: [], returns: "BIGINT", fn: () => hoard.length };`;
      const tooBig = await cp.gql(CREATE_UDF, { name: "big", definition: big }, auth);
      expect(tooBig.createUdf).toMatchObject({ __typename: "OptionError", option: "definition" });
      expect(tooBig.createUdf.message).toContain("validation used more than 256 MB and was stopped (RUNNEL_VALIDATION_MEMORY_MB)");
    });

    test("while a UDF's module code is checked, the control plane answers and its jobs' heartbeats go on", async () => {
      // In a process of its own: the test's event loop must not be the one under test.
      const cp = await spawnControlPlane(backend, { RUNNEL_HEARTBEAT_TIMEOUT_MS: "3000" });
      try {
        const made = await cp.gql(CREATE_PIPELINE, {
          input: { name: "steady", query: `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '50');\nSELECT counter FROM impulse;` },
        });
        const jobId = made.createPipeline.pipeline.jobs[0].id;
        const job = async () => (await cp.gql(`{ job(id: "${jobId}") { state restarts events { reason } } }`)).job;
        await eventually("the job to run", async () => (await job()).state === "Running");

        const dir = tempDir("runnel-probe-");
        const [marker, release] = [join(dir, "started"), join(dir, "release")];
        const definition = `import { existsSync, writeFileSync } from "node:fs";
          writeFileSync(${JSON.stringify(marker)}, String(process.pid));
          const until = Date.now() + 15_000;
          while (!existsSync(${JSON.stringify(release)}) && Date.now() < until) {}
          export default { args: ["BIGINT"], returns: "BIGINT", fn: (x) => x };`;
        const creating = cp.gql(CREATE_UDF, { name: "patient", definition });
        await eventually("the module code to start", () => existsSync(marker));
        expect(Number(readFileSync(marker, "utf8"))).not.toBe(cp.proc.pid);
        // The module code is busy now; the control plane still answers.
        const answer = await fetch(`${cp.url}/graphql`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ query: "{ connectors { name } }" }),
          signal: AbortSignal.timeout(10_000),
        });
        expect(answer.status).toBe(200);
        const before = await eventually("a heartbeat while the module code runs", async () => {
          const r = await cp.gql(`{ job(id: "${jobId}") { metrics { at } } }`);
          return r.job.metrics?.at;
        });
        await eventually("a newer heartbeat while the module code still runs", async () => {
          const r = await cp.gql(`{ job(id: "${jobId}") { metrics { at } } }`);
          return r.job.metrics.at > before && !existsSync(release);
        });
        writeFileSync(release, "");
        expect((await creating).createUdf.__typename).toBe("UdfPayload");
        const after = await job();
        expect(after.restarts).toBe(0);
        expect(after.state).toBe("Running");
        expect(after.events.map((e: any) => e.reason).join("\n")).not.toContain("no heartbeat");
      } finally {
        await cp.stop();
      }
    });
  });
}
