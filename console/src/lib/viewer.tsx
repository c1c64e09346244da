/** Who is logged in and what their role allows; the console hides or disables what it does not. */
import { createContext, useContext } from "react";
import type { ViewerInfo } from "../api/session.ts";

export interface ViewerContextValue {
  viewer: ViewerInfo;
  /** Whether the server needs a token (then the console offers to log out). */
  tokenInUse: boolean;
  logout(): void;
}

export const ViewerContext = createContext<ViewerContextValue | null>(null);

export function useViewer() {
  const ctx = useContext(ViewerContext);
  if (!ctx) throw new Error("useViewer outside the logged-in console");
  const role = ctx.viewer.role;
  return {
    ...ctx,
    role,
    /** Editors and admins create, stop, restart and rescale pipelines and UDFs. */
    canEdit: role === "ADMIN" || role === "EDITOR",
    /** Only admins see tokens and connection profiles. */
    isAdmin: role === "ADMIN",
  };
}
