/**
 * Connection profiles (admins only): reusable connection settings. Secret
 * options are write-only: the form sends them, the API never returns them.
 */
import { useState, type FormEvent } from "react";
import { useMutation, useQuery } from "urql";
import { graphql } from "../graphql.ts";
import { optionDocs, useCatalog } from "../lib/catalog.ts";
import { fmtTime } from "../lib/format.ts";

const ProfilesQuery = graphql(`
  query Profiles {
    connectionProfiles {
      id
      name
      connector
      config
      secretKeys
      createdAt
    }
  }
`);
const CreateProfile = graphql(`
  mutation CreateProfile($input: CreateConnectionProfileInput!) {
    createConnectionProfile(input: $input) {
      __typename
      ... on UserError {
        message
      }
      ... on OptionError {
        option
      }
    }
  }
`);
const DeleteProfile = graphql(`
  mutation DeleteProfile($id: ID!) {
    deleteConnectionProfile(input: { id: $id }) {
      __typename
      ... on UserError {
        message
      }
    }
  }
`);

export function ProfilesPage() {
  const [{ data, error }, refetch] = useQuery({ query: ProfilesQuery });
  const [, remove] = useMutation(DeleteProfile);
  return (
    <section aria-labelledby="profiles-title">
      <h1 id="profiles-title">Connection profiles</h1>
      <p className="muted">
        Tables use a profile with <code>connection_profile = 'name'</code>. Secrets are write-only.
      </p>
      {error && <p role="alert" className="error">{error.message}</p>}
      {data && data.connectionProfiles.length === 0 && <p>None yet.</p>}
      {data && data.connectionProfiles.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Connector</th>
                <th scope="col">Options</th>
                <th scope="col">Secrets</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {data.connectionProfiles.map((p) => (
                <tr key={p.id}>
                  <th scope="row">{p.name}</th>
                  <td>{p.connector}</td>
                  <td>
                    {Object.entries((p.config ?? {}) as Record<string, string>).map(([k, v]) => (
                      <div key={k}>
                        <code>{k}</code> = <code>{v}</code>
                      </div>
                    ))}
                  </td>
                  <td>
                    {p.secretKeys.map((k) => (
                      <div key={k}>
                        <code>{k}</code> = <span aria-label="hidden">••••••</span>
                      </div>
                    ))}
                  </td>
                  <td>{fmtTime(p.createdAt)}</td>
                  <td>
                    <button
                      type="button"
                      className="danger"
                      onClick={async () => {
                        await remove({ id: p.id });
                        refetch({ requestPolicy: "network-only" });
                      }}
                    >
                      Delete {p.name}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <NewProfile onCreated={() => refetch({ requestPolicy: "network-only" })} />
    </section>
  );
}

function NewProfile(props: { onCreated(): void }) {
  const { catalog } = useCatalog();
  const [name, setName] = useState("");
  const [connector, setConnector] = useState("kafka");
  const [values, setValues] = useState<Record<string, string>>({});
  const [state, create] = useMutation(CreateProfile);
  const [problem, setProblem] = useState<string | null>(null);
  const options = optionDocs(catalog?.connectors.find((c) => c.name === connector)?.optionsSchema);
  async function submit(e: FormEvent) {
    e.preventDefault();
    setProblem(null);
    const config: Record<string, string> = {};
    const secrets: Record<string, string> = {};
    for (const o of options) {
      const v = values[o.name]?.trim();
      if (v) (o.secret ? secrets : config)[o.name] = v;
    }
    const r = await create({ input: { name: name.trim(), connector, config, secrets } });
    const out = r.data?.createConnectionProfile;
    if (out?.__typename === "ConnectionProfilePayload") {
      setName("");
      setValues({});
      props.onCreated();
    } else setProblem(out && "message" in out ? out.message : (r.error?.message ?? "not saved"));
  }
  return (
    <form onSubmit={submit} className="card" aria-labelledby="new-profile-title">
      <h2 id="new-profile-title">New profile</h2>
      <div className="field-row">
        <div className="field">
          <label htmlFor="profile-name">Name</label>
          <input id="profile-name" required value={name} onChange={(e) => setName(e.target.value)} />
        </div>
        <div className="field">
          <label htmlFor="profile-connector">Connector</label>
          <select id="profile-connector" value={connector} onChange={(e) => setConnector(e.target.value)}>
            {catalog?.connectors.map((c) => (
              <option key={c.name}>{c.name}</option>
            ))}
          </select>
        </div>
      </div>
      <p className="muted">Fill in the connection settings; leave per-table options (topic, path…) to the tables.</p>
      <div className="option-fields">
        {options.map((o) => (
          <div className="field" key={o.name}>
            <label htmlFor={`opt-${o.name}`}>
              {o.name}
              {o.secret && <span className="tag">secret</span>}
            </label>
            {o.values ? (
              <select id={`opt-${o.name}`} value={values[o.name] ?? ""} onChange={(e) => setValues({ ...values, [o.name]: e.target.value })}>
                <option value="">(not set)</option>
                {o.values.map((v) => (
                  <option key={v}>{v}</option>
                ))}
              </select>
            ) : (
              <input
                id={`opt-${o.name}`}
                type={o.secret ? "password" : "text"}
                autoComplete="off"
                value={values[o.name] ?? ""}
                placeholder={o.default === undefined ? "" : String(o.default)}
                onChange={(e) => setValues({ ...values, [o.name]: e.target.value })}
              />
            )}
            {o.description && <small>{o.description}</small>}
          </div>
        ))}
      </div>
      {problem && (
        <p role="alert" className="error">
          {problem}
        </p>
      )}
      <button type="submit" className="primary" disabled={state.fetching || !name.trim()}>
        Save profile
      </button>
    </form>
  );
}
