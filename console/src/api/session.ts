/**
 * The API token for this browser tab. Kept in sessionStorage only: it goes when
 * the tab closes, and other tabs log in for themselves.
 */
const KEY = "runnel.token";

export const storedToken = (): string | null => sessionStorage.getItem(KEY);
export const storeToken = (token: string | null) => (token ? sessionStorage.setItem(KEY, token) : sessionStorage.removeItem(KEY));
export const authHeaders = (token: string | null): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

export type Role = "ADMIN" | "EDITOR" | "VIEWER";

export interface ViewerInfo {
  name: string | null;
  role: Role;
}

export type WhoAmI = { ok: true; viewer: ViewerInfo } | { ok: false; unauthorized: boolean; message: string };

/** Asks the server who this token is; a 401 means a token is needed or this one is wrong. */
export async function whoAmI(token: string | null): Promise<WhoAmI> {
  let res: Response;
  try {
    res = await fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", ...authHeaders(token) },
      body: JSON.stringify({ query: "query Viewer { viewer { name role } }" }),
    });
  } catch (err) {
    return { ok: false, unauthorized: false, message: `the control plane does not answer (${(err as Error).message}); is it running?` };
  }
  const body = (await res.json().catch(() => null)) as { data?: { viewer: ViewerInfo }; errors?: { message: string }[] } | null;
  if (res.status === 401) return { ok: false, unauthorized: true, message: body?.errors?.[0]?.message ?? "this server needs an API token" };
  if (!body?.data?.viewer) return { ok: false, unauthorized: false, message: body?.errors?.[0]?.message ?? `the server answered ${res.status}` };
  return { ok: true, viewer: body.data.viewer };
}
