/**
 * MAP functions with DataFusion's names and semantics (functions-nested:
 * map.rs, map_extract.rs, map_keys.rs, map_values.rs): `map(keys, values)` and
 * `make_map(k1, v1, ...)` build a map (keys unique and not NULL, else the row
 * fails), `map_extract` / `element_at` give a one-element list (empty when the
 * key is absent), `m['k']` / `get_field(m, 'k')` the value itself (NULL when
 * absent), `map_keys` / `map_values` lists, `cardinality` the entry count.
 * A MAP value is an array of [key, value] pairs (see plugin-api/types.ts).
 */
import { t, typeName, type SqlType } from "../plugin-api/index.ts";
import type { ArgInfo, ScalarFunction } from "./functions.ts";
import { ExprError, NULL_TYPE } from "./values.ts";

type Pairs = [unknown, unknown][];

const numeric = (x: SqlType) => x.kind === "int" || x.kind === "float" || x.kind === "decimal";
const isNullType = (a: ArgInfo) => a.literal?.value === null && a.type === NULL_TYPE;

/** Whether a key of type `b` can be looked up among keys of type `a`. */
function keyFits(a: SqlType, b: SqlType): boolean {
  if (a === NULL_TYPE || b === NULL_TYPE) return true;
  const textual = (x: SqlType) => x.kind === "string" || x.kind === "json";
  return a.kind === b.kind || (numeric(a) && numeric(b)) || (textual(a) && textual(b));
}

/** The map type of argument `i` (an error naming the function when it is not one). */
function mapType(args: ArgInfo[], name: string, i = 0): Extract<SqlType, { kind: "map" }> {
  const a = args[i]!;
  if (a.type.kind !== "map") throw new ExprError(`${name}: argument ${i + 1} must be a MAP, got ${isNullType(a) ? "NULL" : typeName(a.type)}`);
  return a.type;
}

function checkKey(args: ArgInfo[], name: string): void {
  const m = mapType(args, name);
  const k = args[1]!;
  if (!isNullType(k) && !keyFits(m.key, k.type)) throw new ExprError(`${name}: the map's keys are ${typeName(m.key)}, the key given is ${typeName(k.type)}; cast it`);
}

/** Key equality: as SQL compares the key type (numbers by value, text exactly). */
const sameKey = (a: unknown, b: unknown) => a === b || (typeof a === "object" && a !== null && JSON.stringify(a) === JSON.stringify(b));

function lookup(m: Pairs, key: unknown): [unknown, unknown] | undefined {
  for (const e of m) if (sameKey(e[0], key)) return e;
  return undefined;
}

/** Pairs from keys and values, refusing what DataFusion refuses: NULL keys, repeated keys, lists of different lengths. */
function build(keys: unknown[], values: unknown[], name: string): Pairs {
  if (keys.length !== values.length) throw new ExprError(`${name}: ${keys.length} keys but ${values.length} values; give one value per key`);
  const out: Pairs = [];
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i] ?? null;
    if (k === null) throw new ExprError(`${name}: a map key cannot be NULL`);
    if (lookup(out, k)) throw new ExprError(`${name}: the key ${JSON.stringify(k)} is given twice; map keys must be unique`);
    out.push([k, values[i] ?? null]);
  }
  return out;
}

function commonType(types: SqlType[], what: string): SqlType {
  const known = types.filter((x) => x !== NULL_TYPE);
  if (known.length === 0) return NULL_TYPE;
  const first = known[0]!;
  for (const x of known) if (!keyFits(first, x)) throw new ExprError(`${what} mix ${typeName(first)} and ${typeName(x)}; cast them to one type`);
  if (known.every(numeric) && known.some((x) => x.kind === "float")) return t.double();
  return first;
}

const elementOf = (a: ArgInfo, name: string, i: number): SqlType => {
  if (isNullType(a)) return NULL_TYPE;
  if (a.type.kind !== "array") throw new ExprError(`${name}: argument ${i + 1} must be a list, got ${typeName(a.type)}`);
  return a.type.element;
};

const fromLists = (args: ArgInfo[]): SqlType => {
  const key = elementOf(args[0]!, "map", 0);
  if (key.kind === "array" || key.kind === "struct" || key.kind === "map") throw new ExprError(`map: keys of type ${typeName(key)} are not supported; use text or numbers`);
  return t.map(key === NULL_TYPE ? t.string() : key, elementOf(args[1]!, "map", 1));
};

const fromPairs = (args: ArgInfo[]): SqlType => {
  if (args.length === 0 || args.length % 2 !== 0) throw new ExprError("make_map takes keys and values in pairs: make_map('a', 1, 'b', 2)");
  const key = commonType(args.filter((_, i) => i % 2 === 0).map((a) => a.type), "make_map: the keys");
  const value = commonType(args.filter((_, i) => i % 2 === 1).map((a) => a.type), "make_map: the values");
  return t.map(key === NULL_TYPE ? t.string() : key, value);
};

export const MAP_FUNCTIONS: ScalarFunction[] = [
  { name: "map", args: ["array", "array"], returns: fromLists, impl: (k: unknown[], v: unknown[]) => build(k, v, "map"), strict: true },
  {
    name: "make_map",
    args: ["any"],
    variadic: true,
    returns: fromPairs,
    impl: (...xs: unknown[]) =>
      build(
        xs.filter((_, i) => i % 2 === 0),
        xs.filter((_, i) => i % 2 === 1),
        "make_map",
      ),
    strict: false,
  },
  ...["map_extract", "element_at"].map(
    (name): ScalarFunction => ({
      name,
      args: ["map", "any"],
      returns: (args) => t.array(mapType(args, name).value),
      check: (args) => checkKey(args, name),
      // A NULL map gives NULL; a NULL key matches no key (an empty list), as in DuckDB.
      impl: (m: Pairs | null, k: unknown) => {
        if (m === null || m === undefined) return null;
        const e = k === null || k === undefined ? undefined : lookup(m, k);
        return e ? [e[1]] : [];
      },
      strict: false,
    }),
  ),
  { name: "map_keys", args: ["map"], returns: (args) => t.array(mapType(args, "map_keys").key), impl: (m: Pairs) => m.map((e) => e[0]), strict: true },
  { name: "map_values", args: ["map"], returns: (args) => t.array(mapType(args, "map_values").value), impl: (m: Pairs) => m.map((e) => e[1]), strict: true },
  {
    name: "cardinality",
    args: ["any"],
    returns: (args) => {
      const a = args[0]!;
      if (!isNullType(a) && a.type.kind !== "array" && a.type.kind !== "map") throw new ExprError(`cardinality: takes an array or a MAP, got ${typeName(a.type)}`);
      return t.bigint();
    },
    impl: (a: unknown[]) => a.length,
    strict: true,
  },
];

/** `m['k']` and get_field(m, 'k'): the value, or NULL when the key is absent. */
export function mapGet(m: Pairs, key: unknown): unknown {
  return lookup(m, key)?.[1] ?? null;
}

export { checkKey as checkMapKey };
