/**
 * Issue 8, probe 6 (files): pipelines the control plane runs read and write
 * only under RUNNEL_FILE_ROOTS — symbolic links and `..` resolved first, at
 * creation and again where the job opens the file; `single_file` does not
 * replace a file unless told to; the control plane's data (PGlite's files,
 * the key file, checkpoints) is private to its user. On PGlite and on
 * PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { tempDir } from "../../kit/cli.ts";
import { BACKENDS, eventually, fileRoot, testControlPlane, type TestControlPlane } from "../../kit/control-plane.ts";

setDefaultTimeout(60_000);

const CREATE = `mutation ($query: String!) {
  createPipeline(input: { name: "files", query: $query }) { __typename ... on PipelinePayload { pipeline { id jobs { id } } } ... on UserError { message } }
}`;
const readFrom = (path: string) => `CREATE TABLE src (line TEXT) WITH (connector = 'single_file', path = '${path}', format = 'json', 'json.unstructured' = 'true', type = 'source');
SELECT line FROM src;`;
const writeTo = (path: string, extra = "") => `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100', message_count = '3');
CREATE TABLE out WITH (connector = 'single_file', path = '${path}', format = 'json', type = 'sink'${extra});
INSERT INTO out SELECT counter FROM impulse;`;

async function finalState(cp: TestControlPlane, jobId: string) {
  return eventually("the job to end", async () => {
    const job = (await cp.gql(`{ job(id: "${jobId}") { state failureMessage } }`)).job;
    return job.state === "Finished" || job.state === "Failed" ? job : undefined;
  });
}

/** Every file and directory under `dir` whose mode lets anyone but the owner in. */
function openToOthers(dir: string): string[] {
  const out: string[] = [];
  const st = lstatSync(dir);
  if ((st.mode & 0o077) !== 0) out.push(`${dir} ${(st.mode & 0o777).toString(8)}`);
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const s = lstatSync(path);
    if (s.isDirectory()) out.push(...openToOthers(path));
    else if (s.isFile() && (s.mode & 0o077) !== 0) out.push(`${path} ${(s.mode & 0o777).toString(8)}`);
  }
  return out;
}

for (const backend of BACKENDS) {
  describe(`files on ${backend}`, () => {
    // A job that fails is not restarted: its first failure is the one to read.
    let cp: TestControlPlane;
    beforeAll(async () => {
      cp = await testControlPlane(backend, { maxRestarts: 0 });
    });
    afterAll(async () => cp?.stop());

    test("reading /etc/shadow (or anything outside the roots) is refused at creation, and nothing of it is shown", async () => {
      const shadow = readFileSync("/etc/shadow", "utf8").split(/[:\n]/)[0]!;
      const r = await cp.gql(CREATE, { query: readFrom("/etc/shadow") });
      expect(r.createPipeline.__typename).toBe("SqlError");
      expect(r.createPipeline.message).toContain("option 'path': '/etc/shadow' is outside the directories pipelines may use here");
      expect(r.createPipeline.message).toContain("RUNNEL_FILE_ROOTS");
      expect(r.createPipeline.message).not.toContain(`${shadow}:`);
    });

    test("`..` and symbolic links do not lead out of the roots, at creation or where the job runs", async () => {
      const outside = tempDir("runnel-outside-");
      writeFileSync(join(outside, "secret.json"), `{"line":"outside"}\n`);
      const root = fileRoot(cp);
      symlinkSync(outside, join(root, "link"));
      symlinkSync(join(outside, "created-through-link.jsonl"), join(root, "dangling.jsonl"));
      for (const path of [`${root}/../../${basename(outside)}/secret.json`, `${root}/link/secret.json`]) {
        const r = await cp.gql(CREATE, { query: readFrom(path) });
        expect(r.createPipeline.message).toContain(`resolves to '${outside}/secret.json'`);
      }
      const dangling = await cp.gql(CREATE, { query: writeTo(`${root}/dangling.jsonl`) });
      expect(dangling.createPipeline.message).toContain(`resolves to '${outside}/created-through-link.jsonl'`);

      // A path only known where the job runs is checked there.
      process.env.RUNNEL_SECRET_ESCAPE = `link/secret.json`;
      try {
        const later = await cp.gql(CREATE, { query: readFrom(`${root}/{{ RUNNEL_SECRET_ESCAPE }}`) });
        expect(later.createPipeline.__typename).toBe("PipelinePayload");
        const job = await finalState(cp, later.createPipeline.pipeline.jobs[0].id);
        expect(job.state).toBe("Failed");
        expect(job.failureMessage).toContain("is outside the directories pipelines may use here");
      } finally {
        delete process.env.RUNNEL_SECRET_ESCAPE;
      }
      expect(readdirSync(outside)).toEqual(["secret.json"]);

      // Inside the roots, links are fine.
      mkdirSync(join(root, "data"));
      writeFileSync(join(root, "data", "in.json"), `{"line":"inside"}\n`);
      symlinkSync(join(root, "data"), join(root, "alias"));
      const inside = await cp.gql(CREATE, { query: writeTo(`${root}/alias/out.jsonl`) });
      expect((await finalState(cp, inside.createPipeline.pipeline.jobs[0].id)).state).toBe("Finished");
      expect(readFileSync(join(root, "data", "out.jsonl"), "utf8").trim().split("\n").length).toBe(3);
    });

    test("single_file does not replace an existing file unless the table says overwrite = 'true'", async () => {
      const target = join(fileRoot(cp), "precious.jsonl");
      writeFileSync(target, `{"keep":"me"}\n`);
      const refused = await cp.gql(CREATE, { query: writeTo(target) });
      const job = await finalState(cp, refused.createPipeline.pipeline.jobs[0].id);
      expect(job.state).toBe("Failed");
      expect(job.failureMessage).toContain("exists and is not empty; add overwrite = 'true'");
      expect(readFileSync(target, "utf8")).toBe(`{"keep":"me"}\n`);

      const allowed = await cp.gql(CREATE, { query: writeTo(target, ", overwrite = 'true'") });
      expect((await finalState(cp, allowed.createPipeline.pipeline.jobs[0].id)).state).toBe("Finished");
      expect(readFileSync(target, "utf8").trim().split("\n").map((l) => JSON.parse(l).counter)).toEqual([0, 1, 2]);
    });

    test("the data directory is the control plane's user's alone: directories 0700, files 0600 (PGlite's, the key, checkpoints)", async () => {
      const r = await cp.gql(CREATE, { query: writeTo(join(fileRoot(cp), "out.jsonl")) });
      expect((await finalState(cp, r.createPipeline.pipeline.jobs[0].id)).state).toBe("Finished");
      expect(openToOthers(cp.dataDir)).toEqual([]);
      await cp.stop();
      const files = readdirSync(cp.dataDir, { recursive: true }).map(String);
      expect(files).toContain("secret.key");
      expect(files.some((f) => f.startsWith("checkpoints/"))).toBe(true);
      if (backend === "pglite") expect(files.some((f) => f.startsWith("pglite/base/"))).toBe(true);
      expect(openToOthers(cp.dataDir)).toEqual([]);
    });
  });
}
