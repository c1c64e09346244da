/** A connector's or format's options, from its JSON Schema. */
import { optionDocs } from "../lib/catalog.ts";

export function OptionsTable(props: { schema: unknown; caption: string }) {
  const options = optionDocs(props.schema);
  if (options.length === 0) return <p className="muted">No options.</p>;
  return (
    <div className="table-wrap">
      <table className="options">
        <caption>{props.caption}</caption>
        <thead>
          <tr>
            <th scope="col">Option</th>
            <th scope="col">Type</th>
            <th scope="col">Default</th>
            <th scope="col">Description</th>
          </tr>
        </thead>
        <tbody>
          {options.map((o) => (
            <tr key={o.name}>
              <th scope="row">
                <code>{o.name}</code>
                {o.required && <span className="tag">required</span>}
                {o.secret && <span className="tag">secret</span>}
              </th>
              <td>
                {o.values ? o.values.map((v) => <code key={v}>{v} </code>) : o.type}
                {o.minimum !== null && ` ≥ ${o.minimum}`}
                {o.maximum !== null && ` ≤ ${o.maximum}`}
              </td>
              <td>{o.default === undefined ? "—" : <code>{String(o.default)}</code>}</td>
              <td>{o.description ?? ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
