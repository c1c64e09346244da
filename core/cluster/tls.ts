/**
 * TLS between a job's processes, when configured: every process of the job (job
 * manager and workers) reads the same three PEM files from its environment,
 * presents the certificate and accepts only peers whose certificate the CA
 * signed (mutual TLS), so records cannot be read or injected on the wire. The
 * job secret still authenticates each connection on top of it. Unix sockets
 * (one machine) stay plain: the file system guards them.
 */
import { readFileSync } from "node:fs";

export interface ClusterTls {
  cert: string;
  key: string;
  ca: string;
}

export const CLUSTER_TLS_VARIABLES = ["RUNNEL_CLUSTER_TLS_CERT", "RUNNEL_CLUSTER_TLS_KEY", "RUNNEL_CLUSTER_TLS_CA"] as const;

/** The configured TLS material, or null when none of the variables is set; a partial setting is an error naming what is missing. */
export function clusterTlsFromEnv(env: Record<string, string | undefined> = process.env): ClusterTls | null {
  const [certVar, keyVar, caVar] = CLUSTER_TLS_VARIABLES;
  const given = CLUSTER_TLS_VARIABLES.filter((v) => env[v]);
  if (given.length === 0) return null;
  if (given.length < 3) {
    const missing = CLUSTER_TLS_VARIABLES.filter((v) => !env[v]);
    throw new Error(`TLS between a job's processes needs all of ${CLUSTER_TLS_VARIABLES.join(", ")}; ${missing.join(" and ")} not set`);
  }
  const read = (name: string) => {
    try {
      return readFileSync(env[name]!, "utf8");
    } catch (err) {
      throw new Error(`${name}: cannot read ${env[name]}: ${(err as Error).message}`);
    }
  };
  return { cert: read(certVar), key: read(keyVar), ca: read(caVar) };
}

/** Options for a listening side: present the certificate, require and verify the peer's. */
export function serverTls(tls: ClusterTls) {
  return { cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true, rejectUnauthorized: true };
}

/** Options for a connecting side: present the certificate, verify the server's against the CA (and its name or address). */
export function clientTls(tls: ClusterTls) {
  return { cert: tls.cert, key: tls.key, ca: tls.ca, rejectUnauthorized: true };
}
