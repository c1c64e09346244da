/** Masking secrets in pipeline SQL and blotting them out of messages (security/redact.ts), against the real plugin registry. */
import { beforeAll, expect, test } from "bun:test";
import { createRegistry } from "../../../core/registry/loader.ts";
import type { PluginRegistry } from "../../../core/registry/registry.ts";
import { maskQuery, redactText } from "../../../control-plane/security/redact.ts";

let registry: PluginRegistry;
beforeAll(async () => {
  registry = await createRegistry();
});

test("declared-secret and secret-named options lose their whole value; the rest of the query stays as written", () => {
  const query = `CREATE TABLE t (k BIGINT) WITH (connector = 'postgres', connection_string = 'postgres://u:pw1@h/db', table_name = 't',
  password = 'it''s a secret');
CREATE TABLE k WITH (connector = 'kafka', bootstrap_servers = 'b:9092', topic = 'x', format = 'json', 'auth.password' = E'kafka-pw');
INSERT INTO t SELECT 1 AS k;`;
  const { masked, values } = maskQuery(query, registry);
  expect(masked).toBe(`CREATE TABLE t (k BIGINT) WITH (connector = 'postgres', connection_string = '***', table_name = 't',
  password = '***');
CREATE TABLE k WITH (connector = 'kafka', bootstrap_servers = 'b:9092', topic = 'x', format = 'json', 'auth.password' = '***');
INSERT INTO t SELECT 1 AS k;`);
  expect(values.sort()).toEqual(["it's a secret", "kafka-pw", "postgres://u:pw1@h/db"]);
});

test("elsewhere a URL keeps all but its password, in options and comments alike; an environment reference alone is no secret", () => {
  const query = `-- mirror of http://admin:hunter22@10.0.0.1/x
CREATE TABLE f WITH (connector = 'filesystem', path = 's3://b/p', format = 'json', 'storage.aws_endpoint' = 'http://minio:minio-pw@127.0.0.1:9000');
CREATE TABLE t (k BIGINT) WITH (connector = 'postgres', connection_string = 'postgres://u:{{ RUNNEL_SECRET_PW }}@h/db', table_name = 't', password = '{{ RUNNEL_SECRET_PW }}');`;
  const { masked, values } = maskQuery(query, registry);
  expect(masked).toContain("-- mirror of http://admin:***@10.0.0.1/x");
  expect(masked).toContain("'storage.aws_endpoint' = 'http://minio:***@127.0.0.1:9000'");
  expect(masked).toContain("connection_string = '***'"); // declared secret: the whole value, whatever it holds
  expect(masked).toContain("password = '{{ RUNNEL_SECRET_PW }}'");
  expect(values.sort()).toEqual(["hunter22", "minio-pw", "postgres://u:{{ RUNNEL_SECRET_PW }}@h/db"]);
});

test("SQL that does not parse still loses the passwords of its URLs", () => {
  expect(maskQuery("CREATE TABLE ( oops 'postgres://u:topsecret@h' ", registry).masked).toBe("CREATE TABLE ( oops 'postgres://u:***@h' ");
});

test("redactText blots out every occurrence, longest secret first, but not short ones that would garble the message", () => {
  expect(redactText("pw=abcdef and abcdefgh, id 42", ["abcdef", "abcdefgh", "42"])).toBe("pw=*** and ***, id 42");
  expect(redactText("cannot connect to postgres://me:s3cr3t@db:5432", [])).toBe("cannot connect to postgres://me:***@db:5432");
});
