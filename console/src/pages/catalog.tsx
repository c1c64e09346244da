/** The catalog: connectors and formats with their options (from JSON Schema), and the functions a query may call. */
import { useCatalog } from "../lib/catalog.ts";
import { OptionsTable } from "../components/options-table.tsx";

export function CatalogPage() {
  const { catalog, error } = useCatalog();
  if (error) return <p role="alert" className="error">{error.message}</p>;
  if (!catalog) return <p role="status">Loading…</p>;
  return (
    <section aria-labelledby="catalog-title" className="catalog">
      <h1 id="catalog-title">Catalog</h1>
      <nav aria-label="Catalog sections" className="toc">
        <a href="#connectors">Connectors</a> · <a href="#formats">Formats</a> · <a href="#functions">Functions</a>
      </nav>
      <h2 id="connectors">Connectors</h2>
      {catalog.connectors.map((c) => (
        <details key={c.name} className="entry">
          <summary>
            <code>{c.name}</code> {c.source && <span className="tag">source</span>} {c.sink && <span className="tag">sink</span>} <span className="muted">{c.description}</span>
          </summary>
          <OptionsTable schema={c.optionsSchema} caption={`Options of connector ${c.name}`} />
        </details>
      ))}
      <h2 id="formats">Formats</h2>
      {catalog.formats.map((f) => (
        <details key={f.name} className="entry">
          <summary>
            <code>{f.name}</code> <span className="muted">{f.description}</span>
          </summary>
          <OptionsTable schema={f.optionsSchema} caption={`Options of format ${f.name}`} />
        </details>
      ))}
      <h2 id="functions">Functions</h2>
      <ul className="functions">
        {catalog.functions.map((f) => (
          <li key={f.name}>
            <code>{f.name}</code> <span className="muted">{f.kind.toLowerCase()}</span>
          </li>
        ))}
        {catalog.udfs.map((u) => (
          <li key={u.id}>
            <code>{u.name}</code> <span className="muted">stored UDF</span>
          </li>
        ))}
      </ul>
    </section>
  );
}
