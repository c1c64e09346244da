/**
 * The console's shell: checks whether the server needs a token (login screen
 * if so), then the navigation and the pages.
 */
import { useCallback, useEffect, useMemo, useState } from "react";
import { Provider } from "urql";
import { Link, Redirect, Route, Switch, useLocation } from "wouter";
import { createApiClient } from "./api/client.ts";
import { storedToken, storeToken, whoAmI, type ViewerInfo } from "./api/session.ts";
import { ViewerContext, useViewer } from "./lib/viewer.tsx";
import { LoginPage } from "./pages/login.tsx";
import { PipelinesPage } from "./pages/pipelines.tsx";
import { NewPipelinePage } from "./pages/new-pipeline.tsx";
import { PipelinePage } from "./pages/pipeline.tsx";
import { CatalogPage } from "./pages/catalog.tsx";
import { UdfsPage } from "./pages/udfs.tsx";
import { ProfilesPage } from "./pages/profiles.tsx";
import { TokensPage } from "./pages/tokens.tsx";

type SessionState =
  | { phase: "checking" }
  | { phase: "login"; message: string | null }
  | { phase: "ready"; token: string | null; viewer: ViewerInfo }
  | { phase: "unreachable"; message: string };

export function App() {
  const [session, setSession] = useState<SessionState>({ phase: "checking" });

  const check = useCallback(async (token: string | null, loginMessage: string | null = null) => {
    const who = await whoAmI(token);
    if (who.ok) {
      storeToken(token);
      setSession({ phase: "ready", token, viewer: who.viewer });
      return null;
    }
    if (who.unauthorized) {
      storeToken(null);
      setSession({ phase: "login", message: token ? who.message : loginMessage });
      return who.message;
    }
    setSession({ phase: "unreachable", message: who.message });
    return who.message;
  }, []);

  useEffect(() => {
    void check(storedToken());
  }, [check]);

  const logout = useCallback(() => {
    storeToken(null);
    setSession({ phase: "login", message: null });
  }, []);
  const onUnauthorized = useCallback(() => {
    storeToken(null);
    setSession({ phase: "login", message: "the server refused the token (revoked?); log in again" });
  }, []);

  if (session.phase === "checking") return <p className="centered" role="status">Connecting to the control plane…</p>;
  if (session.phase === "unreachable")
    return (
      <main className="centered">
        <p role="alert">{session.message}</p>
        <button onClick={() => void check(storedToken())}>Try again</button>
      </main>
    );
  if (session.phase === "login") return <LoginPage message={session.message} onLogin={(token) => check(token)} />;
  return <Console token={session.token} viewer={session.viewer} onUnauthorized={onUnauthorized} logout={logout} />;
}

function Console(props: { token: string | null; viewer: ViewerInfo; onUnauthorized(): void; logout(): void }) {
  const { token, onUnauthorized } = props;
  const api = useMemo(() => createApiClient(token, onUnauthorized), [token, onUnauthorized]);
  useEffect(() => api.dispose, [api]);
  const ctx = useMemo(() => ({ viewer: props.viewer, tokenInUse: token !== null, logout: props.logout }), [props.viewer, token, props.logout]);
  return (
    <ViewerContext.Provider value={ctx}>
      <Provider value={api.client}>
        <Shell />
      </Provider>
    </ViewerContext.Provider>
  );
}

function NavLink(props: { href: string; children: string }) {
  const [location] = useLocation();
  const active = props.href === "/" ? location === "/" || location.startsWith("/pipelines/") : location.startsWith(props.href);
  return (
    <Link href={props.href} aria-current={active ? "page" : undefined}>
      {props.children}
    </Link>
  );
}

function Shell() {
  const { role, canEdit, isAdmin, tokenInUse, logout } = useViewer();
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link href="/" className="brand">
          Runnel
        </Link>
        <nav aria-label="Main">
          <NavLink href="/">Pipelines</NavLink>
          {canEdit && <NavLink href="/new">New pipeline</NavLink>}
          <NavLink href="/catalog">Catalog</NavLink>
          <NavLink href="/udfs">UDFs</NavLink>
          {isAdmin && <NavLink href="/profiles">Connection profiles</NavLink>}
          {isAdmin && <NavLink href="/tokens">API tokens</NavLink>}
          {/* Same tab: a new tab would not share this tab's sessionStorage, where the token is. */}
          <a href="/graphql">GraphiQL</a>
        </nav>
        <div className="who">
          <span className="badge" title="Your role on this server">
            {role.toLowerCase()}
          </span>
          {tokenInUse && (
            <button className="link" onClick={logout}>
              Log out
            </button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Switch>
          <Route path="/" component={PipelinesPage} />
          <Route path="/new">{canEdit ? <NewPipelinePage /> : <Redirect to="/" />}</Route>
          <Route path="/pipelines/:id">{(params) => <PipelinePage id={params.id} />}</Route>
          <Route path="/catalog" component={CatalogPage} />
          <Route path="/udfs" component={UdfsPage} />
          <Route path="/profiles">{isAdmin ? <ProfilesPage /> : <Redirect to="/" />}</Route>
          <Route path="/tokens">{isAdmin ? <TokensPage /> : <Redirect to="/" />}</Route>
          <Route>
            <h1>Not found</h1>
            <p>
              No page here. <Link href="/">Back to the pipelines</Link>.
            </p>
          </Route>
        </Switch>
      </main>
    </div>
  );
}
