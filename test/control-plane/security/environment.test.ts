/**
 * Issue 8, probe 5 (`{{ ENV }}` reads any variable): in pipelines the control
 * plane runs, `{{ VAR }}` resolves only variables starting with
 * RUNNEL_SECRET_ or listed in RUNNEL_ENV_ALLOWLIST — never the control
 * plane's own credentials — and a refusal names the option, not the value.
 * `runnel run` resolves any variable: its SQL is the shell user's own. On
 * PGlite and on PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runCli, tempDir, writeSql } from "../../kit/cli.ts";
import { BACKENDS, eventually, fileRoot, testControlPlane, type TestControlPlane } from "../../kit/control-plane.ts";

setDefaultTimeout(60_000);

const TOKEN = "env-probe-admin-token";
const auth = { authorization: `Bearer ${TOKEN}` };
const CREATE = `mutation ($query: String!) {
  createPipeline(input: { name: "env", query: $query }) { __typename ... on PipelinePayload { pipeline { id jobs { id } } } ... on OptionError { option message line } ... on SqlError { message } }
}`;
const sinkTo = (path: string) => `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100', message_count = '3');
CREATE TABLE out WITH (connector = 'single_file', path = '${path}', format = 'json', type = 'sink');
INSERT INTO out SELECT counter FROM impulse;`;

for (const backend of BACKENDS) {
  describe(`{{ ENV }} on ${backend}`, () => {
    let cp: TestControlPlane;
    let root: string;
    const saved = { ...process.env };
    beforeAll(async () => {
      Object.assign(process.env, { RUNNEL_API_TOKENS: TOKEN, RUNNEL_SECRET_OUT_NAME: "from-secret", MY_APP_DIR: "from-allowlist" });
      cp = await testControlPlane(backend, { envAllowlist: ["MY_APP_*"] });
      root = fileRoot(cp);
    });
    afterAll(async () => {
      for (const k of ["RUNNEL_API_TOKENS", "RUNNEL_SECRET_OUT_NAME", "MY_APP_DIR"]) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
      await cp?.stop();
    });

    test("a variable off the allowlist is refused at creation, naming the option and never showing the value", async () => {
      for (const name of ["RUNNEL_API_TOKENS", "DATABASE_URL", "RUNNEL_SECRET_KEY", "HOME"]) {
        const r = await cp.gql(CREATE, { query: sinkTo(`${root}/x{{ ${name} }}.jsonl`) }, auth);
        expect(r.createPipeline).toMatchObject({ __typename: "OptionError", option: "path", line: 2 });
        expect(r.createPipeline.message).toContain(`refers to the environment variable ${name}, which pipelines may not read here`);
        expect(r.createPipeline.message).not.toContain(TOKEN);
      }
      // The same through a connection profile's (write-only) options.
      await cp.gql(
        `mutation { createConnectionProfile(input: { name: "sneaky", connector: "single_file", config: { format: "json" }, secrets: { path: "/tmp/{{ RUNNEL_API_TOKENS }}" } }) { __typename } }`,
        {},
        auth,
      );
      const viaProfile = await cp.gql(CREATE, { query: sinkTo("unused").replace(/connector = 'single_file', path = '[^']*', format = 'json'/, "connection_profile = 'sneaky'") }, auth);
      expect(viaProfile.createPipeline).toMatchObject({ __typename: "OptionError", option: "path" });
      expect(JSON.stringify(viaProfile)).not.toContain(TOKEN);
    });

    test("RUNNEL_SECRET_* and RUNNEL_ENV_ALLOWLIST variables resolve where the job runs", async () => {
      const r = await cp.gql(CREATE, { query: sinkTo(`${root}/{{ RUNNEL_SECRET_OUT_NAME }}-{{MY_APP_DIR}}.jsonl`) }, auth);
      expect(r.createPipeline.__typename).toBe("PipelinePayload");
      const out = join(root, "from-secret-from-allowlist.jsonl");
      await eventually("the job to write its file", async () => {
        const job = (await cp.gql(`{ job(id: "${r.createPipeline.pipeline.jobs[0].id}") { state failureMessage } }`, {}, auth)).job;
        if (job.state === "Failed") throw new Error(job.failureMessage);
        return job.state === "Finished";
      });
      expect(readFileSync(out, "utf8").trim().split("\n").length).toBe(3);
    });
  });
}

test("`runnel run` resolves any variable: the SQL there is the shell user's own", async () => {
  const dir = tempDir("runnel-env-cli-");
  const file = writeSql(dir, sinkTo("{{ RUNNEL_TEST_ANY_DIR }}/out.jsonl"));
  process.env.RUNNEL_TEST_ANY_DIR = dir;
  try {
    const r = await runCli(["run", file, "--quiet"]);
    expect(r.code).toBe(0);
  } finally {
    delete process.env.RUNNEL_TEST_ANY_DIR;
  }
  expect(existsSync(join(dir, "out.jsonl"))).toBe(true);
});
