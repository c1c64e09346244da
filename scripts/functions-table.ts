/** Prints the README's table of scalar functions (between its "functions-table" markers). */
import { functionsTable } from "../core/expr/catalog.ts";

console.log(functionsTable());
