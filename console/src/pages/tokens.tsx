/** API tokens (admins only): create one with a role (shown once), revoke. */
import { useState, type FormEvent } from "react";
import { useMutation, useQuery } from "urql";
import { graphql } from "../graphql.ts";
import { fmtTime } from "../lib/format.ts";
import type { Role } from "../api/session.ts";

const TokensQuery = graphql(`
  query Tokens {
    apiTokens {
      id
      name
      createdAt
    }
  }
`);
const CreateToken = graphql(`
  mutation CreateToken($input: CreateApiTokenInput!) {
    createApiToken(input: $input) {
      id
      name
      token
    }
  }
`);
const DeleteToken = graphql(`
  mutation DeleteToken($id: ID!) {
    deleteApiToken(input: { id: $id }) {
      __typename
      ... on UserError {
        message
      }
    }
  }
`);

const ROLES: { role: Role; label: string }[] = [
  { role: "VIEWER", label: "viewer: reads and watches" },
  { role: "EDITOR", label: "editor: pipelines and UDFs" },
  { role: "ADMIN", label: "admin: everything, tokens and profiles too" },
];

export function TokensPage() {
  const [{ data, error }, refetch] = useQuery({ query: TokensQuery });
  const [, create] = useMutation(CreateToken);
  const [, remove] = useMutation(DeleteToken);
  const [name, setName] = useState("");
  const [role, setRole] = useState<Role>("VIEWER");
  const [created, setCreated] = useState<{ name: string; token: string } | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  async function submit(e: FormEvent) {
    e.preventDefault();
    setProblem(null);
    const r = await create({ input: { name: name.trim(), role } });
    if (r.data) {
      setCreated({ name: r.data.createApiToken.name, token: r.data.createApiToken.token });
      setName("");
      refetch({ requestPolicy: "network-only" });
    } else setProblem(r.error?.message ?? "not created");
  }
  return (
    <section aria-labelledby="tokens-title">
      <h1 id="tokens-title">API tokens</h1>
      <p className="muted">
        Once a token exists, every request needs one (<code>Authorization: Bearer …</code>). Tokens from <code>RUNNEL_API_TOKENS</code> are not listed.
      </p>
      {error && <p role="alert" className="error">{error.message}</p>}
      {created && (
        <div className="card notice" role="status">
          <p>
            Token <strong>{created.name}</strong>, shown this once: copy it now.
          </p>
          <code className="secret" data-testid="new-token">
            {created.token}
          </code>
          <button type="button" onClick={() => void navigator.clipboard?.writeText(created.token)}>
            Copy
          </button>
        </div>
      )}
      {data && data.apiTokens.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {data.apiTokens.map((t) => (
                <tr key={t.id}>
                  <th scope="row">{t.name}</th>
                  <td>{fmtTime(t.createdAt)}</td>
                  <td>
                    <button
                      type="button"
                      className="danger"
                      onClick={async () => {
                        if (!window.confirm(`Revoke ${t.name}? Whoever uses it loses access.`)) return;
                        await remove({ id: t.id });
                        refetch({ requestPolicy: "network-only" });
                      }}
                    >
                      Revoke {t.name}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <form onSubmit={submit} className="card" aria-labelledby="new-token-title">
        <h2 id="new-token-title">New token</h2>
        <div className="field-row">
          <div className="field">
            <label htmlFor="token-name">Name (who or what uses it)</label>
            <input id="token-name" required value={name} onChange={(e) => setName(e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="token-role">Role</label>
            <select id="token-role" value={role} onChange={(e) => setRole(e.target.value as Role)}>
              {ROLES.map((r) => (
                <option key={r.role} value={r.role}>
                  {r.label}
                </option>
              ))}
            </select>
          </div>
        </div>
        {problem && (
          <p role="alert" className="error">
            {problem}
          </p>
        )}
        <button type="submit" className="primary" disabled={!name.trim()}>
          Create token
        </button>
      </form>
    </section>
  );
}
