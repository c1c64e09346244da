/**
 * Errors a user can act on. GraphQL turns them into typed results of the
 * mutation's error union; REST into 4xx bodies. Anything else is a bug and is
 * masked by the server.
 */
export class UserError extends Error {
  override name = "UserError";
  constructor(
    message: string,
    readonly kind: "sql" | "option" | "not_found" | "invalid" | "conflict",
    readonly details: { line?: number; column?: number; option?: string; table?: string; id?: string } = {},
  ) {
    super(message);
  }

  get httpStatus(): number {
    return this.kind === "not_found" ? 404 : this.kind === "conflict" ? 409 : 400;
  }
}

export const notFound = (what: string, id: string) => new UserError(`no ${what} with id '${id}'`, "not_found", { id });
