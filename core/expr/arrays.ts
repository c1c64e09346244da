/**
 * Array functions with DataFusion's names, aliases and semantics (1-based
 * positions, negative ones counting from the end, NULL for a position out of
 * range; an array argument that is NULL gives NULL unless DataFusion says
 * otherwise, as array_append and array_concat do), plus the conditional
 * functions nvl, nvl2 and ifnull, and struct construction.
 */
import { t, typeName, type SqlType } from "../plugin-api/index.ts";
import type { ArgInfo, ArgKind, ScalarFunction } from "./functions.ts";
import { compareValues } from "./aggregates.ts";
import { ExprError, NULL_TYPE } from "./values.ts";
import { checkMapKey, mapGet } from "./maps.ts";

type Impl = (...args: any[]) => unknown;
type Arr = unknown[];

const bigint = t.bigint();
const bool = t.boolean();
const text = t.string();

function fn(names: string | string[], args: ArgKind[], returns: ScalarFunction["returns"], impl: Impl, extra: Partial<ScalarFunction> = {}): ScalarFunction[] {
  return (Array.isArray(names) ? names : [names]).map((name) => ({ name, args, returns, impl, strict: true, ...extra }));
}

const isNullType = (a: ArgInfo) => a.literal?.value === null && a.type === NULL_TYPE;
/** The array type of argument `i` (an error naming the function when it is not one). */
function arrayType(args: ArgInfo[], i = 0): SqlType {
  const a = args[i]!;
  if (isNullType(a)) return t.array(NULL_TYPE);
  if (a.type.kind !== "array") throw new ExprError(`argument ${i + 1} must be an array, got ${typeName(a.type)}`);
  return a.type;
}
const elementOf = (args: ArgInfo[], i = 0): SqlType => {
  const a = arrayType(args, i);
  return a.kind === "array" ? a.element : NULL_TYPE;
};
const sameArray = (args: ArgInfo[]) => arrayType(args, 0);
const numeric = (x: SqlType) => x.kind === "int" || x.kind === "float" || x.kind === "decimal";

/** Whether values of `b` can stand beside elements of `a` (same kind, numbers together, NULL anywhere). */
function compatible(a: SqlType, b: SqlType): boolean {
  if (a === NULL_TYPE || b === NULL_TYPE) return true;
  if (numeric(a) && numeric(b)) return true;
  const textual = (x: SqlType) => x.kind === "string" || x.kind === "json";
  return a.kind === b.kind || (textual(a) && textual(b));
}

/** Checks that the element arguments at `at` fit the array's elements. */
const elementArgs =
  (...at: number[]) =>
  (args: ArgInfo[]) => {
    const el = elementOf(args);
    for (const i of at) {
      const a = args[i];
      if (a && !isNullType(a) && !compatible(el, a.type)) throw new ExprError(`argument ${i + 1} (${typeName(a.type)}) does not fit the array's elements (${typeName(el)})`);
    }
  };

const arraysAlike = (args: ArgInfo[]) => {
  const el = elementOf(args, 0);
  for (let i = 1; i < args.length; i++) {
    const other = elementOf(args, i);
    if (!compatible(el, other)) throw new ExprError(`the arrays hold ${typeName(el)} and ${typeName(other)}; cast one of them`);
  }
};

/** SQL equality of elements (NULL matches NULL here, as DataFusion's array functions compare). */
function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || a === undefined || b === undefined) return (a ?? null) === (b ?? null);
  if (typeof a === "number" && typeof b === "number") return Number.isNaN(a) && Number.isNaN(b);
  if (typeof a === "object" && typeof b === "object") return JSON.stringify(a) === JSON.stringify(b);
  return false;
}

function distinct(values: Arr): Arr {
  const out: Arr = [];
  for (const v of values) if (!out.some((o) => same(o, v))) out.push(v);
  return out;
}

/** 1-based position (negative from the end) → 0-based index, or -1. */
function index(a: Arr, i: number): number {
  const j = i > 0 ? i - 1 : i < 0 ? a.length + i : -1;
  return j >= 0 && j < a.length ? j : -1;
}

/** DataFusion's array_slice: inclusive 1-based bounds, negative ones from the end, a stride (negative walks back). */
function slice(a: Arr, begin: number | null, end: number | null, stride: number | null = 1): Arr | null {
  const n = a.length;
  const step = stride ?? 1;
  if (step === 0) throw new ExprError("array_slice: the stride cannot be 0");
  const norm = (i: number) => (i < 0 ? n + i + 1 : i);
  let from = begin === null ? (step > 0 ? 1 : n) : norm(begin);
  let to = end === null ? (step > 0 ? n : 1) : norm(end);
  if (step > 0) {
    from = Math.max(from, 1);
    to = Math.min(to, n);
    const out: Arr = [];
    for (let i = from; i <= to; i += step) out.push(a[i - 1]);
    return out;
  }
  from = Math.min(from, n);
  to = Math.max(to, 1);
  const out: Arr = [];
  for (let i = from; i >= to; i += step) out.push(a[i - 1]);
  return out;
}

function sortArray(a: Arr, dir = "ASC", nulls?: string): Arr {
  const d = dir.toUpperCase();
  if (d !== "ASC" && d !== "DESC") throw new ExprError(`array_sort: the direction must be 'ASC' or 'DESC', got '${dir}'`);
  const desc = d === "DESC";
  const n = (nulls ?? (desc ? "NULLS FIRST" : "NULLS FIRST")).toUpperCase();
  if (n !== "NULLS FIRST" && n !== "NULLS LAST") throw new ExprError(`array_sort: write 'NULLS FIRST' or 'NULLS LAST', got '${nulls}'`);
  const nullsFirst = n === "NULLS FIRST";
  return a.slice().sort((x, y) => {
    if (x === null || y === null) return x === y ? 0 : (x === null) === nullsFirst ? -1 : 1;
    const c = compareValues(x, y);
    return desc ? -c : c;
  });
}

function series(start: number, stop: number, step: number, inclusive: boolean, name: string): number[] {
  if (step === 0) throw new ExprError(`${name}: the step cannot be 0`);
  const count = Math.floor((stop - start) / step) + 1;
  if (count > 10_000_000) throw new ExprError(`${name}: ${count} values are too many for one array`);
  const out: number[] = [];
  for (let v = start; step > 0 ? (inclusive ? v <= stop : v < stop) : inclusive ? v >= stop : v > stop; v += step) out.push(v);
  return out;
}

const seriesFn = (names: string[], inclusive: boolean) =>
  fn(names, ["int", "int", "int"], t.array(bigint), (a: number, b?: number, s?: number) => (b === undefined ? series(0, a, 1, inclusive, names[0]!) : series(a, b, s ?? 1, inclusive, names[0]!)), {
    required: 1,
  });

function dims(a: unknown): number[] {
  const out: number[] = [];
  let cur = a;
  while (Array.isArray(cur)) {
    out.push(cur.length);
    cur = cur[0];
  }
  return out;
}

/** The common element type of make_array's values. */
function makeArrayType(args: ArgInfo[]): SqlType {
  const types = args.filter((a) => !isNullType(a)).map((a) => a.type);
  if (types.length === 0) return t.array(bigint);
  const first = types[0]!;
  for (const x of types) if (!compatible(first, x)) throw new ExprError(`make_array mixes ${typeName(first)} and ${typeName(x)}; cast them to one type`);
  if (types.every(numeric) && types.some((x) => x.kind === "float")) return t.array(t.double());
  return t.array(first);
}

/** named_struct('a', x, 'b', y): names must be constants. */
function namedStructType(args: ArgInfo[]): SqlType {
  if (args.length === 0 || args.length % 2 !== 0) throw new ExprError("named_struct takes pairs: named_struct('name', value, ...)");
  const fields = [];
  for (let i = 0; i < args.length; i += 2) {
    const name = args[i]!.literal?.value;
    if (typeof name !== "string") throw new ExprError(`named_struct: argument ${i + 1} must be a constant field name`);
    fields.push({ name, type: args[i + 1]!.type, nullable: true });
  }
  return t.struct(fields);
}

const nonStrict = { strict: false };
const conditionalType = (args: ArgInfo[]) => {
  const types = args.filter((a) => !isNullType(a)).map((a) => a.type);
  if (types.length === 0) return NULL_TYPE;
  const first = types[0]!;
  for (const x of types) if (!compatible(first, x)) throw new ExprError(`the arguments mix ${typeName(first)} and ${typeName(x)}; cast them to one type`);
  return types.every(numeric) && types.some((x) => x.kind === "float") ? t.double() : first;
};

export const ARRAY_FUNCTIONS: ScalarFunction[] = [
  ...fn(["array_append", "array_push_back", "list_append", "list_push_back"], ["array", "any"], sameArray, (a: Arr | null, x: unknown) => [...(a ?? []), x ?? null], { ...nonStrict, check: elementArgs(1) }),
  ...fn(["array_prepend", "array_push_front", "list_prepend", "list_push_front"], ["any", "array"], (a) => arrayType(a, 1), (x: unknown, a: Arr | null) => [x ?? null, ...(a ?? [])], {
    ...nonStrict,
    check: (a) => {
      const el = elementOf(a, 1);
      if (!isNullType(a[0]!) && !compatible(el, a[0]!.type)) throw new ExprError(`argument 1 (${typeName(a[0]!.type)}) does not fit the array's elements (${typeName(el)})`);
    },
  }),
  ...fn(["array_concat", "array_cat", "list_concat", "list_cat"], ["array"], sameArray, (...arrays: (Arr | null)[]) => arrays.flatMap((a) => a ?? []), { ...nonStrict, variadic: true, check: arraysAlike }),
  ...fn(["array_distinct", "list_distinct"], ["array"], sameArray, (a: Arr) => sortArray(distinct(a))),
  ...fn(["array_empty", "empty", "list_empty"], ["array"], bool, (a: Arr) => a.length === 0),
  ...fn(["array_except", "list_except"], ["array", "array"], sameArray, (a: Arr, b: Arr) => distinct(a.filter((x) => !b.some((y) => same(x, y)))), { check: arraysAlike }),
  ...fn(["array_intersect", "list_intersect"], ["array", "array"], sameArray, (a: Arr, b: Arr) => distinct(a.filter((x) => b.some((y) => same(x, y)))), { check: arraysAlike }),
  ...fn(["array_union", "list_union"], ["array", "array"], sameArray, (a: Arr, b: Arr) => distinct([...a, ...b]), { check: arraysAlike }),
  ...fn(["array_has_all", "list_has_all"], ["array", "array"], bool, (a: Arr, b: Arr) => b.every((y) => a.some((x) => same(x, y))), { check: arraysAlike }),
  ...fn(["array_has_any", "list_has_any", "arrays_overlap"], ["array", "array"], bool, (a: Arr, b: Arr) => b.some((y) => a.some((x) => same(x, y))), { check: arraysAlike }),
  ...fn(["list_has", "list_contains"], ["array", "any"], bool, (a: Arr, x: unknown) => a.some((y) => same(x, y)), { check: elementArgs(1) }),
  ...fn(["array_extract", "list_element", "list_extract"], ["array", "int"], (a) => elementOf(a), (a: Arr, i: number) => {
    const j = index(a, i);
    return j < 0 ? null : (a[j] ?? null);
  }),
  ...fn(["list_length"], ["array"], bigint, (a: Arr) => a.length),
  ...fn(["array_join", "array_to_string", "list_join", "list_to_string"], ["array", "text", "text"], text, (a: Arr, sep: string, nullAs?: string) =>
    a.flat(Infinity).filter((x) => x !== null || nullAs !== undefined).map((x) => (x === null ? nullAs : String(x))).join(sep), { required: 2 }),
  ...fn(["array_max", "list_max"], ["array"], (a) => elementOf(a), (a: Arr) => {
    let best: unknown = null;
    for (const v of a) if (v !== null && (best === null || compareValues(v, best) > 0)) best = v;
    return best;
  }),
  ...fn(["array_min", "list_min"], ["array"], (a) => elementOf(a), (a: Arr) => {
    let best: unknown = null;
    for (const v of a) if (v !== null && (best === null || compareValues(v, best) < 0)) best = v;
    return best;
  }),
  ...fn(["array_any_value", "list_any_value"], ["array"], (a) => elementOf(a), (a: Arr) => a.find((v) => v !== null) ?? null),
  ...fn(["array_distance", "list_distance"], ["array", "array"], t.double(), (a: number[], b: number[]) => {
    if (a.length !== b.length) throw new ExprError(`array_distance: the arrays have ${a.length} and ${b.length} elements; they need the same length`);
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2;
    return Math.sqrt(sum);
  }, {
    check: (args) => {
      for (const i of [0, 1]) if (!numeric(elementOf(args, i)) && elementOf(args, i) !== NULL_TYPE) throw new ExprError("array_distance needs arrays of numbers");
    },
  }),
  ...fn(["array_ndims", "list_ndims"], ["array"], bigint, (a: Arr) => dims(a).length),
  ...fn(["array_dims", "list_dims"], ["array"], t.array(bigint), (a: Arr) => dims(a)),
  ...fn(["array_pop_back", "list_pop_back"], ["array"], sameArray, (a: Arr) => a.slice(0, -1)),
  ...fn(["array_pop_front", "list_pop_front"], ["array"], sameArray, (a: Arr) => a.slice(1)),
  ...fn(["array_position", "array_indexof", "list_position", "list_indexof"], ["array", "any", "int"], bigint, (a: Arr, x: unknown, from = 1) => {
    for (let i = Math.max(1, from) - 1; i < a.length; i++) if (same(a[i], x)) return i + 1;
    return null;
  }, { required: 2, check: elementArgs(1) }),
  ...fn(["array_positions", "list_positions"], ["array", "any"], t.array(bigint), (a: Arr, x: unknown) => a.flatMap((v, i) => (same(v, x) ? [i + 1] : [])), { check: elementArgs(1) }),
  ...fn(["array_remove", "list_remove"], ["array", "any"], sameArray, (a: Arr, x: unknown) => {
    const i = a.findIndex((v) => same(v, x));
    return i < 0 ? a : [...a.slice(0, i), ...a.slice(i + 1)];
  }, { check: elementArgs(1) }),
  ...fn(["array_remove_n", "list_remove_n"], ["array", "any", "int"], sameArray, (a: Arr, x: unknown, n: number) => {
    let left = n;
    return a.filter((v) => !(left > 0 && same(v, x) && left-- > 0));
  }, { check: elementArgs(1) }),
  ...fn(["array_remove_all", "list_remove_all"], ["array", "any"], sameArray, (a: Arr, x: unknown) => a.filter((v) => !same(v, x)), { check: elementArgs(1) }),
  ...fn(["array_repeat", "list_repeat"], ["any", "int"], (a) => t.array(a[0]!.type), (x: unknown, n: number) => {
    if (n > 10_000_000) throw new ExprError(`array_repeat: ${n} copies are too many for one array`);
    return Array.from({ length: Math.max(0, n) }, () => x);
  }),
  ...fn(["array_replace", "list_replace"], ["array", "any", "any"], sameArray, (a: Arr, from: unknown, to: unknown) => {
    const i = a.findIndex((v) => same(v, from));
    return i < 0 ? a : a.map((v, j) => (j === i ? to : v));
  }, { check: elementArgs(1, 2) }),
  ...fn(["array_replace_n", "list_replace_n"], ["array", "any", "any", "int"], sameArray, (a: Arr, from: unknown, to: unknown, n: number) => {
    let left = n;
    return a.map((v) => (left > 0 && same(v, from) ? (left--, to) : v));
  }, { check: elementArgs(1, 2) }),
  ...fn(["array_replace_all", "list_replace_all"], ["array", "any", "any"], sameArray, (a: Arr, from: unknown, to: unknown) => a.map((v) => (same(v, from) ? to : v)), { check: elementArgs(1, 2) }),
  ...fn(["array_resize", "list_resize"], ["array", "int", "any"], sameArray, (a: Arr, size: number, fill?: unknown) => {
    if (size < 0) throw new ExprError("array_resize: the size cannot be negative");
    if (size > 10_000_000) throw new ExprError(`array_resize: ${size} elements are too many for one array`);
    return Array.from({ length: size }, (_, i) => (i < a.length ? a[i] : (fill ?? null)));
  }, { required: 2, check: elementArgs(2) }),
  ...fn(["array_reverse", "list_reverse"], ["array"], sameArray, (a: Arr) => a.slice().reverse()),
  ...fn(["array_slice", "list_slice"], ["array", "int", "int", "int"], sameArray, (a: Arr, b: number | null, e: number | null, s?: number | null) => (a === null ? null : slice(a, b, e, s ?? 1)), {
    required: 3,
    strict: false,
  }),
  ...fn(["array_sort", "list_sort"], ["array", "text", "text"], sameArray, (a: Arr, dir?: string, nulls?: string) => sortArray(a, dir, nulls), { required: 1 }),
  ...fn(["flatten"], ["array"], (a) => {
    const el = elementOf(a);
    return el.kind === "array" ? el : arrayType(a);
  }, (a: Arr) => (a.every((x) => Array.isArray(x) || x === null) ? a.flatMap((x) => (x as Arr | null) ?? []) : a)),
  ...fn(["string_to_array", "string_to_list"], ["text", "text", "text"], t.array(text), (s: string | null, d: string | null, nullStr?: string) => {
    if (s === null) return null;
    const parts = d === null ? Array.from(s) : d === "" ? [s] : s.split(d);
    return parts.map((p) => (nullStr !== undefined && p === nullStr ? null : p));
  }, { required: 2, strict: false }),
  ...fn(["make_array", "make_list"], ["any"], makeArrayType, (...xs: unknown[]) => xs.map((x) => x ?? null), { ...nonStrict, variadic: true, required: 0 }),
  seriesFn(["generate_series"], true)[0]!,
  seriesFn(["range"], false)[0]!,
  // conditional
  ...fn(["nvl", "ifnull"], ["any", "any"], conditionalType, (a: unknown, b: unknown) => a ?? b ?? null, nonStrict),
  ...fn(["nvl2"], ["any", "any", "any"], (a) => conditionalType(a.slice(1)), (a: unknown, b: unknown, c: unknown) => (a !== null && a !== undefined ? (b ?? null) : (c ?? null)), nonStrict),
  // structs
  ...fn(["named_struct"], ["any"], namedStructType, () => null, {
    ...nonStrict,
    variadic: true,
    bind: (args) => {
      const names = args.filter((_, i) => i % 2 === 0).map((a) => String(a.literal!.value));
      return (...xs: unknown[]) => Object.fromEntries(names.map((n, i) => [n, xs[2 * i + 1] ?? null]));
    },
  }),
  ...fn(["struct", "row"], ["any"], (args) => t.struct(args.map((a, i) => ({ name: `c${i}`, type: a.type, nullable: true }))), (...xs: unknown[]) =>
    Object.fromEntries(xs.map((x, i) => [`c${i}`, x ?? null])), { ...nonStrict, variadic: true }),
  // get_field(struct, 'name'), and get_field(map, key) (what m['key'] is), as DataFusion's get_field takes both.
  ...fn(["get_field"], ["any", "any"], (args) => {
    const s = args[0]!.type;
    if (s.kind === "map") return s.value;
    const name = args[1]!.literal?.value;
    if (s.kind !== "struct") throw new ExprError(`get_field needs a struct or a MAP, got ${typeName(s)}`);
    const f = s.fields.find((x) => x.name === name);
    if (!f) throw new ExprError(`the struct has no field '${String(name)}'; its fields are ${s.fields.map((x) => x.name).join(", ")}`);
    return f.type;
  }, (s: Record<string, unknown>, name: string) => s[name] ?? null, {
    check: (args) => {
      if (args[0]!.type.kind === "map") checkMapKey(args, "get_field");
      else if (args[1]!.type.kind !== "string" && args[1]!.type.kind !== "json") throw new ExprError("get_field: the field name must be TEXT");
    },
    bind: (args) => (args[0]!.type.kind === "map" ? mapGet : (s: Record<string, unknown>, name: string) => s[name] ?? null),
  }),
];
