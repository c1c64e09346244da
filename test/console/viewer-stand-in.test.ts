/**
 * Stand-in for Query.viewer until the security branch lands (drop this file with
 * the stand-in commit): an open server answers ADMIN, as the roles contract says.
 */
import { afterAll, expect, test } from "bun:test";
import { testControlPlane, type TestControlPlane } from "../kit/control-plane.ts";

let cp: TestControlPlane;
afterAll(async () => cp?.stop());

test("an open loopback server makes its caller an admin", async () => {
  cp = await testControlPlane("pglite");
  const data = await cp.gql("{ viewer { role } }");
  expect(data.viewer.role).toBe("ADMIN");
});
