/**
 * Plugins load their libraries on first use; a library that is not installed
 * is still reported naming the plugin and what to run, whether it is noticed
 * when the plugin loads or when a table first needs it.
 */
import { describe, expect, test } from "bun:test";
import { importFor, lazyRequire, requireFor, requirePackages } from "../../../plugins/shared/lazy.ts";

describe("lazy plugin libraries", () => {
  test("a missing package fails the plugin's load naming the plugin and the command", () => {
    expect(() => requirePackages("connector-demo", import.meta.url, ["kafkajs", "@runnel-missing/client"])).toThrow(
      "plugin 'connector-demo' needs the npm package '@runnel-missing/client', which is not installed; run bun add @runnel-missing/client",
    );
    expect(() => requirePackages("connector-demo", import.meta.url, ["protobufjs", "@aws-sdk/client-s3"])).not.toThrow();
  });

  test("a package missing when a table first needs it is named with its plugin, subpath or not", async () => {
    // @ts-expect-error: the package does not exist
    await expect(importFor("format-demo", () => import("runnel-missing-codec/sync"))).rejects.toThrow(
      "plugin 'format-demo' needs the npm package 'runnel-missing-codec', which is not installed; run bun add runnel-missing-codec",
    );
    expect(() => requireFor("format-demo", () => require("@runnel-missing/codec/lib/x.js"))).toThrow("needs the npm package '@runnel-missing/codec'");
  });

  test("other errors pass unchanged, and a module loads once", async () => {
    await expect(importFor("format-demo", () => Promise.reject(new Error("bad schema")))).rejects.toThrow(/^bad schema$/);
    let loads = 0;
    const load = lazyRequire("format-demo", () => ({ n: ++loads }));
    expect(load()).toBe(load());
    expect(loads).toBe(1);
  });
});
