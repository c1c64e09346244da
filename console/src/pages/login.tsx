/** The login screen, shown when the server needs an API token. */
import { useState, type FormEvent } from "react";

export function LoginPage(props: { message: string | null; onLogin(token: string): Promise<string | null> }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | null>(props.message);
  const [busy, setBusy] = useState(false);
  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    const problem = await props.onLogin(token.trim());
    setBusy(false);
    if (problem) setError(problem);
  }
  return (
    <main className="login">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Log in to Runnel</h1>
        <p>This control plane needs an API token. It is kept for this tab only, until you close it.</p>
        <label htmlFor="token">API token</label>
        <input id="token" type="password" autoComplete="off" autoFocus required value={token} onChange={(e) => setToken(e.target.value)} />
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy || !token.trim()}>
          {busy ? "Checking…" : "Log in"}
        </button>
      </form>
    </main>
  );
}
