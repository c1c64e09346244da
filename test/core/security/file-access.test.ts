/** The file-access policy: paths resolved as the kernel walks them (links, dangling links, `..` after a link) before the roots are checked. */
import { expect, test } from "bun:test";
import { mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { confinedFiles, realPathOf, unrestrictedFiles } from "../../../core/security/file-access.ts";
import { tempDir } from "../../kit/cli.ts";

function layout() {
  const base = tempDir("runnel-files-");
  const root = join(base, "root");
  const outside = join(base, "outside");
  mkdirSync(join(root, "data"), { recursive: true });
  mkdirSync(join(outside, "deep"), { recursive: true });
  symlinkSync(join(outside, "deep"), join(root, "away")); // a link out
  symlinkSync("data", join(root, "here")); // a relative link within
  symlinkSync(join(outside, "not-yet.txt"), join(root, "dangling")); // writing through it creates its target
  symlinkSync(join(root, "loop-b"), join(root, "loop-a"));
  symlinkSync(join(root, "loop-a"), join(root, "loop-b"));
  return { base, root, outside, files: confinedFiles([root], "ask for more") };
}

test("`..` is taken from where a link leads, not from the text", () => {
  const { root, outside } = layout();
  // (Template strings: path.join would apply the `..` to the text first.)
  expect(realPathOf(`${root}/away/../x`)).toBe(join(outside, "x"));
  expect(realPathOf(`${root}/data/../data/./f`)).toBe(join(root, "data", "f"));
  expect(realPathOf(join(root, "here", "f"))).toBe(join(root, "data", "f"));
  expect(realPathOf(`${root}/new/dir/../f`)).toBe(join(root, "new", "f"));
});

test("inside the roots is allowed, whatever the spelling; outside is refused naming the option and the resolved path", () => {
  const { root, outside, files } = layout();
  expect(files.resolve(join(root, "here", "f"), "path")).toBe(join(root, "data", "f"));
  expect(files.resolve(root, "path")).toBe(root);
  expect(() => files.resolve(join(root, "away", "f"), "path")).toThrow(`option 'path': '${join(root, "away", "f")}' (which resolves to '${join(outside, "deep", "f")}') is outside`);
  expect(() => files.resolve(join(root, "dangling"), "path")).toThrow(`resolves to '${join(outside, "not-yet.txt")}'`);
  expect(() => files.resolve(`${root}/../outside/x`, "path")).toThrow("is outside the directories pipelines may use here");
  expect(() => files.resolve(`${root}-sibling/x`, "path")).toThrow("is outside");
  expect(() => files.resolve("/etc/passwd", "tls.ca_file")).toThrow("option 'tls.ca_file': '/etc/passwd' is outside the directories pipelines may use here (" + root + "); ask for more");
});

test("a relative path is taken from the working directory; a link loop is an error; the CLI's policy allows all", () => {
  const { root, files } = layout();
  expect(() => files.resolve("relative.txt", "path")).toThrow("is outside");
  expect(() => files.resolve(join(root, "loop-a", "f"), "path")).toThrow("too many levels of symbolic links");
  expect(unrestrictedFiles.resolve("/etc/passwd", "path")).toBe("/etc/passwd");
});
