/**
 * The scalar functions of DataFusion (as documented in its SQL reference,
 * which Arroyo exposes) and the JSON functions Arroyo adds, by group, with
 * Runnel's status for each: supported, or refused at planning with what to
 * write instead. test/core/expr/catalog.test.ts keeps this, the library and the
 * README's table in step; `bun scripts/functions-table.ts` prints the table.
 */
import { SCALAR_FUNCTIONS, UNSUPPORTED_FUNCTIONS } from "./functions.ts";

export const FUNCTION_GROUPS: Record<string, string[]> = {
  math: [
    "abs", "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt", "ceil", "cos", "cosh", "cot", "degrees", "exp", "factorial", "floor", "gcd",
    "isnan", "iszero", "lcm", "ln", "log", "log10", "log2", "nanvl", "pi", "pow", "power", "radians", "random", "round", "signum", "sin", "sinh", "sqrt",
    "tan", "tanh", "trunc",
  ],
  conditional: ["coalesce", "greatest", "ifnull", "least", "nullif", "nvl", "nvl2"],
  string: [
    "ascii", "bit_length", "btrim", "char_length", "character_length", "chr", "concat", "concat_ws", "contains", "ends_with", "find_in_set", "initcap",
    "instr", "left", "length", "levenshtein", "lower", "lpad", "ltrim", "octet_length", "overlay", "position", "repeat", "replace", "reverse", "right",
    "rpad", "rtrim", "split_part", "starts_with", "strpos", "substr", "substr_index", "substring", "substring_index", "to_hex", "translate", "trim",
    "upper", "uuid",
  ],
  "binary string": ["decode", "encode"],
  regex: ["regexp_count", "regexp_instr", "regexp_like", "regexp_match", "regexp_replace"],
  "date and time": [
    "current_date", "current_time", "current_timestamp", "date_bin", "date_format", "date_part", "date_trunc", "datepart", "datetrunc", "from_unixtime",
    "make_date", "now", "to_char", "to_date", "to_local_time", "to_timestamp", "to_timestamp_micros", "to_timestamp_millis", "to_timestamp_nanos",
    "to_timestamp_seconds", "to_unixtime", "today",
  ],
  array: [
    "array_any_value", "array_append", "array_cat", "array_concat", "array_contains", "array_dims", "array_distance", "array_distinct", "array_element",
    "array_empty", "array_except", "array_extract", "array_has", "array_has_all", "array_has_any", "array_indexof", "array_intersect", "array_join",
    "array_length", "array_max", "array_min", "array_ndims", "array_pop_back", "array_pop_front", "array_position", "array_positions", "array_prepend",
    "array_push_back", "array_push_front", "array_remove", "array_remove_all", "array_remove_n", "array_repeat", "array_replace", "array_replace_all",
    "array_replace_n", "array_resize", "array_reverse", "array_slice", "array_sort", "array_to_string", "array_union", "arrays_overlap", "cardinality",
    "empty", "flatten", "generate_series", "list_any_value", "list_append", "list_cat", "list_concat", "list_contains", "list_dims", "list_distance",
    "list_distinct", "list_element", "list_empty", "list_except", "list_extract", "list_has", "list_has_all", "list_has_any", "list_indexof",
    "list_intersect", "list_join", "list_length", "list_max", "list_min", "list_ndims", "list_pop_back", "list_pop_front", "list_position",
    "list_positions", "list_prepend", "list_push_back", "list_push_front", "list_remove", "list_remove_all", "list_remove_n", "list_repeat",
    "list_replace", "list_replace_all", "list_replace_n", "list_resize", "list_reverse", "list_slice", "list_sort", "list_to_string", "list_union",
    "make_array", "make_list", "range", "string_to_array", "string_to_list",
  ],
  struct: ["get_field", "named_struct", "row", "struct"],
  map: ["element_at", "make_map", "map", "map_extract", "map_keys", "map_values"],
  hashing: ["digest", "md5", "sha224", "sha256", "sha384", "sha512"],
  union: ["union_extract", "union_tag"],
  other: ["arrow_cast", "arrow_typeof", "version"],
  "JSON (Arroyo)": [
    "extract_json", "extract_json_string", "get_first_json_object", "json_as_text", "json_contains", "json_get", "json_get_array", "json_get_bool",
    "json_get_float", "json_get_int", "json_get_json", "json_get_str", "json_length", "json_object_keys",
  ],
};

/** Functions the planner handles itself rather than through the library. */
const PLANNER_FUNCTIONS = new Set(["coalesce", "nullif"]);

export type FunctionStatus = { name: string; group: string } & ({ status: "supported" } | { status: "refused"; instead: string } | { status: "missing" });

export function functionCatalog(): FunctionStatus[] {
  return Object.entries(FUNCTION_GROUPS).flatMap(([group, names]) =>
    names.map((name): FunctionStatus => {
      if (SCALAR_FUNCTIONS.has(name) || PLANNER_FUNCTIONS.has(name)) return { name, group, status: "supported" };
      const instead = UNSUPPORTED_FUNCTIONS[name];
      return instead ? { name, group, status: "refused", instead } : { name, group, status: "missing" };
    }),
  );
}

/** The README's table: per group, the supported functions and the refused ones with what to write. */
export function functionsTable(): string {
  const catalog = functionCatalog();
  const supported = catalog.filter((f) => f.status === "supported").length;
  const lines = [
    `Runnel supports ${supported} of the ${catalog.length} scalar functions below (DataFusion's, which Arroyo exposes, and Arroyo's JSON functions); ` +
      "the others are refused at planning time with what to write instead.",
    "",
    "| group | supported | refused (what to write instead) |",
    "|---|---|---|",
  ];
  for (const group of Object.keys(FUNCTION_GROUPS)) {
    const of = catalog.filter((f) => f.group === group);
    const yes = of.filter((f) => f.status === "supported").map((f) => `\`${f.name}\``);
    const no = of.flatMap((f) => (f.status === "refused" ? [`\`${f.name}\` (${f.instead.replace(/\|/g, "\\|")})`] : f.status === "missing" ? [`\`${f.name}\` (missing)`] : []));
    lines.push(`| ${group} | ${yes.join(" ") || "—"} | ${no.join("; ") || "—"} |`);
  }
  return lines.join("\n");
}
