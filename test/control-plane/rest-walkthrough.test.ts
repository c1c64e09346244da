/**
 * The seed's REST walk-through (../shared/seed/examples.http), run verbatim
 * with curl against a control plane on port 8000 — only the example pipeline
 * id is replaced by the one the first call returns — on PGlite and PostgreSQL.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../kit/cli.ts";
import { BACKENDS, eventually, testControlPlane } from "../kit/control-plane.ts";

setDefaultTimeout(90_000);

// The repository's copy of the seed walk-through; it must not drift from the brief's (beside the repo in development).
const SEED = join(REPO, "examples", "arroyo-0.5.http");
const BRIEF = join(REPO, "..", "shared", "seed", "examples.http");

test("examples/arroyo-0.5.http is the seed's examples.http", () => {
  if (existsSync(BRIEF)) expect(readFileSync(SEED, "utf8")).toBe(readFileSync(BRIEF, "utf8"));
  expect(readFileSync(SEED, "utf8")).toContain("curl http://localhost:8000/api/v1/pipelines");
});

/** The curl commands of the file, each with its heredoc body. */
function curlCommands(text: string): string[] {
  const commands: string[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith("curl ")) continue;
    const cmd = [lines[i]!];
    let heredoc: string | null = null;
    while (true) {
      const line = cmd.at(-1)!;
      const m = /<<\s*'?(\w+)'?\s*$/.exec(line);
      if (m) heredoc = m[1]!;
      if (heredoc) {
        i++;
        cmd.push(lines[i]!);
        if (lines[i] === heredoc) break;
        continue;
      }
      if (!line.trimEnd().endsWith("\\")) break;
      i++;
      cmd.push(lines[i]!);
    }
    commands.push(cmd.join("\n"));
  }
  return commands;
}

async function sh(command: string): Promise<string> {
  const proc = Bun.spawn(["bash", "-c", command], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`command failed (${code}): ${command}\n${err}`);
  return out;
}

const hasJq = Bun.spawnSync(["bash", "-c", "command -v jq"]).exitCode === 0;

for (const backend of BACKENDS) {
  describe(`the seed's REST walk-through on ${backend}`, () => {
    test("every call works as written and answers with the fields shown", async () => {
      const commands = curlCommands(readFileSync(SEED, "utf8"));
      expect(commands.length).toBe(3);
      const cp = await testControlPlane(backend, { port: 8000 });
      try {
        const created = JSON.parse(await sh(commands[0]!));
        expect(created).toMatchObject({ name: "my_pipeline", stop: "none" });
        expect(created.id).toMatch(/^pl_[A-Za-z0-9]{10}$/);
        expect(created.createdAt).toBeGreaterThan(1.6e15); // microseconds
        const id: string = created.id;
        const withId = (c: string) => c.replaceAll("pl_W2UjDI6Iud", id);

        // The second call pipes into jq as written; without jq on the machine, the same call without the pipe.
        const jobsCommand = withId(commands[1]!);
        const running = await eventually("the job to run", async () => {
          const jobs = JSON.parse(await sh(hasJq ? jobsCommand : jobsCommand.replace(/\|\s*jq '\.'/, "")));
          return jobs.data[0]?.state === "Running" ? jobs : undefined;
        });
        expect(running.hasMore).toBe(false);
        expect(Object.keys(running.data[0]).sort()).toEqual(
          ["createdAt", "failureMessage", "finishTime", "id", "runId", "runningDesired", "startTime", "state", "tasks"],
        );
        expect(running.data[0]).toMatchObject({ runningDesired: true, state: "Running", runId: 1, finishTime: null, failureMessage: null });
        // Source and preview output are chained into one task at parallelism 1.
        expect(running.data[0].tasks).toBe(1);
        expect(running.data[0].id).toMatch(/^job_[A-Za-z0-9]{10}$/);

        const patched = JSON.parse(await sh(withId(commands[2]!)));
        expect(patched).toMatchObject({ id, stop: "checkpoint" });
        const stopped = await eventually("the job to stop", async () => {
          const jobs = await (await fetch(`${cp.url}/api/v1/pipelines/${id}/jobs`)).json();
          return jobs.data[0]?.state === "Stopped" ? jobs.data[0] : undefined;
        });
        expect(stopped.runningDesired).toBe(false);
        expect(stopped.finishTime).toBeGreaterThan(stopped.startTime);
        const events = await (await fetch(`${cp.url}/api/v1/jobs/${stopped.id}/events`)).json();
        expect(events.data.map((e: any) => e.toState)).toEqual(["Created", "Compiling", "Scheduling", "Running", "CheckpointStopping", "Stopped"]);
      } finally {
        await cp.stop();
      }
    });
  });
}
