/**
 * Preview rows (JSON lines) as a table. Updating results come as
 * {"before","after","op"}: shown as the op and the row after (or before, for a delete).
 */
export function OutputTable(props: { lines: readonly string[]; caption: string; max?: number }) {
  const shown = props.lines.slice(-(props.max ?? 200));
  const rows = shown.map((line) => {
    try {
      const v = JSON.parse(line) as Record<string, unknown>;
      if (v && typeof v === "object" && "op" in v && ("after" in v || "before" in v)) {
        const row = (v.after ?? v.before ?? {}) as Record<string, unknown>;
        return { op: String(v.op), row };
      }
      return { op: null, row: v };
    } catch {
      return { op: null, row: { line } };
    }
  });
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r.row)))];
  const updating = rows.some((r) => r.op !== null);
  if (rows.length === 0) return <p className="muted">No rows yet. Preview rows appear when the checkpoint covering them completes.</p>;
  return (
    <div className="table-wrap output">
      <table>
        <caption>
          {props.caption} ({props.lines.length} row{props.lines.length === 1 ? "" : "s"}
          {props.lines.length > shown.length ? `, last ${shown.length} shown` : ""})
        </caption>
        <thead>
          <tr>
            {updating && <th scope="col">op</th>}
            {columns.map((c) => (
              <th scope="col" key={c}>
                {c}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={i}>
              {updating && <td>{r.op}</td>}
              {columns.map((c) => (
                <td key={c}>{cell(r.row[c])}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const cell = (v: unknown) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
