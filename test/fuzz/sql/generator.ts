/**
 * A seeded generator of random SQL over a fixed table, written twice: in
 * Runnel's (DataFusion's) dialect and in DuckDB's, so both engines compute
 * the same thing. Where the dialects name or type a construct differently the
 * DuckDB text says the same thing in DuckDB's terms (integer division is `//`,
 * literals are typed explicitly, a TIMESTAMP compares as epoch µs...). Where
 * the engines mean different things on purpose (see differences.ts), the
 * generator avoids the inputs that tell them apart, and unit tests cover those
 * inputs instead.
 */

/** Mulberry32: a small, fast, seedable PRNG so every failure reproduces from its seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type FuzzType = "int" | "float" | "text" | "bool" | "ts";

/** A generated expression in both dialects, with the functions and operators it exercises. */
export interface Gen {
  sql: string;
  duck: string;
  type: FuzzType;
  uses: string[];
}

export class Rng {
  constructor(readonly next: () => number) {}
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

// ---------------------------------------------------------------- the table

export const COLUMNS: { name: string; type: FuzzType }[] = [
  { name: "id", type: "int" },
  { name: "k", type: "int" },
  { name: "i", type: "int" },
  { name: "j", type: "int" },
  { name: "f", type: "float" },
  { name: "g", type: "float" },
  { name: "s", type: "text" },
  { name: "u", type: "text" },
  { name: "b", type: "bool" },
  { name: "ts", type: "ts" },
];

const US = (iso: string) => Date.parse(iso) * 1000;

/** Edge values: zero, signs, the ends of the exactly-held range, empty and Unicode text, leap days and DST change days. */
export const VALUES: Record<FuzzType, unknown[]> = {
  int: [0, 1, -1, 2, 3, 7, -7, 10, 100, -100, 255, 1000, 65536, 2147483647, -2147483648, 4294967296, 9007199254740991, -9007199254740991, 123456789],
  float: [0, -0.5, 0.5, 1.5, -2.25, 2.5, 3.14159, 1e10, -1e10, 1e-5, 123.456, 1e300, -1e-300, Infinity, -Infinity, NaN, 0.1, 100],
  text: ["", "a", "abc", "Hello World", " padded ", "ÉCOLE", "é", "😀", "a😀b", "\uFFFF", "42", "-7", "3.5", "true", "a%b_c", "back\\slash", "line\nbreak", "tab\tx", "x,y,z", "it's"],
  bool: [true, false],
  ts: [
    US("1970-01-01T00:00:00Z"),
    US("2024-02-29T12:30:00Z"), // leap day
    US("2024-03-10T07:00:00Z"), // US daylight-saving change (TIMESTAMP is UTC: nothing moves)
    US("2024-10-27T01:00:00Z"), // EU daylight-saving change
    US("1969-12-31T23:59:59Z") + 999_999, // before the epoch, with microseconds
    US("2000-01-01T00:00:00Z"),
    US("2024-03-15T13:45:30Z") + 250_000,
    US("2023-12-31T23:59:59Z") + 123_456,
    US("2100-03-01T00:00:00Z"),
    US("1900-02-28T06:00:00Z"),
  ],
};

export type Row = unknown[];

/** `n` rows over COLUMNS; a value is NULL with probability 0.12 (never `id`). */
export function generateRows(rng: Rng, n: number): Row[] {
  const rows: Row[] = [];
  for (let r = 0; r < n; r++) {
    rows.push(
      COLUMNS.map((c) => {
        if (c.name === "id") return r;
        if (c.name === "k") return rng.int(0, 3);
        if (rng.chance(0.12)) return null;
        return rng.pick(VALUES[c.type]);
      }),
    );
  }
  return rows;
}

// ---------------------------------------------------------------- literals

function quote(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function floatLiteral(x: number): { sql: string; duck: string } {
  if (Number.isNaN(x)) return { sql: "CAST('NaN' AS DOUBLE)", duck: "CAST('NaN' AS DOUBLE)" };
  if (!Number.isFinite(x)) return { sql: `CAST('${x > 0 ? "inf" : "-inf"}' AS DOUBLE)`, duck: `CAST('${x > 0 ? "inf" : "-inf"}' AS DOUBLE)` };
  const plain = String(x);
  const text = plain.includes("e") || plain.includes(".") ? plain : `${plain}.0`;
  // DuckDB reads 0.5 as DECIMAL; say DOUBLE.
  return { sql: text, duck: `CAST('${x}' AS DOUBLE)` };
}

function timestampText(us: number): string {
  const ms = Math.floor(us / 1000);
  const sub = us - ms * 1000;
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "") + String(sub).padStart(3, "0");
}

export function literal(type: FuzzType, value: unknown): Gen {
  const g = (sql: string, duck: string): Gen => ({ sql, duck, type, uses: [] });
  if (value === null) {
    const t = { int: "BIGINT", float: "DOUBLE", text: "TEXT", bool: "BOOLEAN", ts: "TIMESTAMP" }[type];
    return g(`CAST(NULL AS ${t})`, `CAST(NULL AS ${t === "TEXT" ? "VARCHAR" : t})`);
  }
  switch (type) {
    case "int":
      return g(String(value), `CAST(${value} AS BIGINT)`);
    case "float": {
      const l = floatLiteral(value as number);
      return g(l.sql, l.duck);
    }
    case "text":
      return g(quote(value as string), quote(value as string));
    case "bool":
      return g(value ? "TRUE" : "FALSE", value ? "TRUE" : "FALSE");
    case "ts":
      return g(`TIMESTAMP '${timestampText(value as number)}'`, `TIMESTAMP '${timestampText(value as number)}'`);
  }
}

// ---------------------------------------------------------------- expressions

type Production = (rng: Rng, depth: number) => Gen | null;

const make = (type: FuzzType, sql: string, duck: string, uses: string[], parts: Gen[]): Gen => ({
  sql,
  duck,
  type,
  uses: [...uses, ...parts.flatMap((p) => p.uses)],
});

/** Applies `f` to generated arguments of the given types. */
function fn(type: FuzzType, use: string, argTypes: FuzzType[], sql: (a: string[]) => string, duck: (a: string[]) => string): Production {
  return (rng, depth) => {
    const args = argTypes.map((t) => expr(rng, t, depth - 1));
    return make(type, sql(args.map((a) => a.sql)), duck(args.map((a) => a.duck)), [use], args);
  };
}

const small = (rng: Rng, lo: number, hi: number): Gen => literal("int", rng.int(lo, hi));
const textLit = (rng: Rng, pool: string[]): Gen => literal("text", rng.pick(pool));

const intProductions: [number, Production][] = [
  [3, fn("int", "+", ["int", "int"], ([a, b]) => `(${a} + ${b})`, ([a, b]) => `(${a} + ${b})`)],
  [3, fn("int", "-", ["int", "int"], ([a, b]) => `(${a} - ${b})`, ([a, b]) => `(${a} - ${b})`)],
  [2, fn("int", "*", ["int", "int"], ([a, b]) => `(${a} * ${b})`, ([a, b]) => `(${a} * ${b})`)],
  [2, fn("int", "/", ["int", "int"], ([a, b]) => `(${a} / ${b})`, ([a, b]) => `(${a} // ${b})`)],
  [2, fn("int", "%", ["int", "int"], ([a, b]) => `(${a} % ${b})`, ([a, b]) => `(${a} % ${b})`)],
  [1, fn("int", "neg", ["int"], ([a]) => `(- ${a})`, ([a]) => `(- ${a})`)],
  [1, fn("int", "abs", ["int"], ([a]) => `abs(${a})`, ([a]) => `abs(${a})`)],
  [2, fn("int", "length", ["text"], ([a]) => `length(${a})`, ([a]) => `length(${a})`)],
  [1, fn("int", "octet_length", ["text"], ([a]) => `octet_length(${a})`, ([a]) => `strlen(${a})`)],
  [1, fn("int", "strpos", ["text", "text"], ([a, b]) => `strpos(${a}, ${b})`, ([a, b]) => `strpos(${a}, ${b})`)],
  [1, fn("int", "ascii", ["text"], ([a]) => `ascii(${a})`, ([a]) => `ascii(${a})`)],
  [
    2,
    (rng, depth) => {
      const part = rng.pick(["year", "month", "day", "hour", "minute", "dow", "doy", "isodow", "quarter", "week", "microsecond"]);
      const ts = expr(rng, "ts", depth - 1);
      const duckPart = part === "microsecond" ? "microseconds" : part;
      return make("int", `extract(${part} FROM ${ts.sql})`, `date_part('${duckPart}', ${ts.duck})`, [`extract(${part})`], [ts]);
    },
  ],
  [1, fn("int", "CAST(DOUBLE AS BIGINT)", ["float"], ([a]) => `CAST(${a} AS BIGINT)`, ([a]) => `CAST(trunc(${a}) AS BIGINT)`)],
  [1, fn("int", "greatest", ["int", "int"], ([a, b]) => `greatest(${a}, ${b})`, ([a, b]) => `greatest(${a}, ${b})`)],
  [1, fn("int", "least", ["int", "int"], ([a, b]) => `least(${a}, ${b})`, ([a, b]) => `least(${a}, ${b})`)],
  [
    1,
    (rng, depth) => {
      const a = expr(rng, "int", depth - 1);
      const e = small(rng, 0, 4);
      // DataFusion's power of integers is an integer (DuckDB's is a DOUBLE).
      return make("int", `power(${a.sql}, ${e.sql})`, `CAST(power(${a.duck}, ${e.duck}) AS BIGINT)`, ["power"], [a]);
    },
  ],
  [1, fn("int", "gcd", ["int", "int"], ([a, b]) => `gcd(${a}, ${b})`, ([a, b]) => `gcd(${a}, ${b})`)],
  // Maps: built from generated values under constant keys (keys must be unique and not NULL), read by a key that may be absent.
  [
    1,
    (rng, depth) => {
      const [a, b] = [expr(rng, "int", depth - 1), expr(rng, "int", depth - 1)];
      const key = quote(rng.pick(["x", "y", "z"]));
      const braces = rng.chance(0.5);
      const sql = braces ? `MAP {'x': ${a.sql}, 'y': ${b.sql}}[${key}]` : `map(['x', 'y'], [${a.sql}, ${b.sql}])[${key}]`;
      const duck = braces ? `MAP {'x': ${a.duck}, 'y': ${b.duck}}[${key}]` : `map(['x', 'y'], [${a.duck}, ${b.duck}])[${key}]`;
      return make("int", sql, duck, [braces ? "MAP {}[k]" : "map()[k]"], [a, b]);
    },
  ],
  [
    1,
    (rng, depth) => {
      const [a, k] = [expr(rng, "int", depth - 1), expr(rng, "text", depth - 1)];
      const fnName = rng.pick(["map_extract", "element_at"]);
      return make("int", `cardinality(${fnName}(MAP {'a': ${a.sql}, '': 1}, ${k.sql}))`, `len(${fnName}(MAP {'a': ${a.duck}, '': 1}, ${k.duck}))`, [fnName], [a, k]);
    },
  ],
];

const floatProductions: [number, Production][] = [
  [3, fn("float", "+", ["float", "float"], ([a, b]) => `(${a} + ${b})`, ([a, b]) => `(${a} + ${b})`)],
  [2, fn("float", "-", ["float", "int"], ([a, b]) => `(${a} - ${b})`, ([a, b]) => `(${a} - ${b})`)],
  [2, fn("float", "*", ["float", "float"], ([a, b]) => `(${a} * ${b})`, ([a, b]) => `(${a} * ${b})`)],
  [2, fn("float", "/", ["float", "float"], ([a, b]) => `(${a} / ${b})`, ([a, b]) => `(${a} / ${b})`)],
  [1, fn("float", "sqrt", ["float"], ([a]) => `sqrt(abs(${a}))`, ([a]) => `sqrt(abs(${a}))`)],
  [1, fn("float", "cbrt", ["float"], ([a]) => `cbrt(${a})`, ([a]) => `cbrt(${a})`)],
  [1, fn("float", "ln", ["float"], ([a]) => `ln(abs(${a}) + 1)`, ([a]) => `ln(abs(${a}) + 1)`)],
  [1, fn("float", "log10", ["float"], ([a]) => `log10(abs(${a}) + 1)`, ([a]) => `log10(abs(${a}) + 1)`)],
  [1, fn("float", "floor", ["float"], ([a]) => `floor(${a})`, ([a]) => `floor(${a})`)],
  [1, fn("float", "ceil", ["float"], ([a]) => `ceil(${a})`, ([a]) => `ceil(${a})`)],
  [1, fn("float", "round", ["float"], ([a]) => `round(${a})`, ([a]) => `round(${a})`)],
  [1, fn("float", "trunc", ["float"], ([a]) => `trunc(${a})`, ([a]) => `trunc(${a})`)],
  [1, fn("float", "abs", ["float"], ([a]) => `abs(${a})`, ([a]) => `abs(${a})`)],
  [1, fn("float", "sin", ["float"], ([a]) => `sin(${a})`, ([a]) => `sin(${a})`)],
  [1, fn("float", "atan", ["float"], ([a]) => `atan(${a})`, ([a]) => `atan(${a})`)],
  [1, fn("float", "degrees", ["float"], ([a]) => `degrees(${a})`, ([a]) => `degrees(${a})`)],
  // DuckDB's sign(NaN) is 0; DataFusion's signum(NaN) is NaN.
  [1, fn("float", "signum", ["float"], ([a]) => `signum(${a})`, ([a]) => `(CASE WHEN isnan(${a}) THEN ${a} ELSE sign(${a}) END)`)],
  [1, fn("float", "CAST(BIGINT AS DOUBLE)", ["int"], ([a]) => `CAST(${a} AS DOUBLE)`, ([a]) => `CAST(${a} AS DOUBLE)`)],
  [1, fn("float", "extract(epoch)", ["ts"], ([a]) => `extract(epoch FROM ${a})`, ([a]) => `epoch(${a})`)],
  [1, fn("float", "extract(second)", ["ts"], ([a]) => `extract(second FROM ${a})`, ([a]) => `(date_part('microseconds', ${a}) / 1000000.0)`)],
  [
    1,
    (rng, depth) => {
      const a = expr(rng, "float", depth - 1);
      const e = small(rng, 0, 3);
      return make("float", `power(${a.sql}, ${e.sql})`, `power(${a.duck}, ${e.duck})`, ["power"], [a]);
    },
  ],
];

const PATTERN_TEXT = ["a", "b", "é", "%", "_", "😀", "o", " ", "\\%", "\\_", "ab", "l"];
const SEARCH_TEXT = ["a", "b", "l", "o", "é", "😀", " ", "", "ab", "World", ","];

const textProductions: [number, Production][] = [
  [2, fn("text", "upper", ["text"], ([a]) => `upper(${a})`, ([a]) => `upper(${a})`)],
  [2, fn("text", "lower", ["text"], ([a]) => `lower(${a})`, ([a]) => `lower(${a})`)],
  [
    2,
    (rng, depth) => {
      const a = expr(rng, "text", depth - 1);
      const p = small(rng, 1, 6);
      const n = small(rng, 0, 5);
      return make("text", `substr(${a.sql}, ${p.sql}, ${n.sql})`, `substr(${a.duck}, ${p.duck}, ${n.duck})`, ["substr"], [a]);
    },
  ],
  [1, (rng, depth) => { const a = expr(rng, "text", depth - 1); const n = small(rng, -4, 4); return make("text", `left(${a.sql}, ${n.sql})`, `left(${a.duck}, ${n.duck})`, ["left"], [a]); }],
  [1, (rng, depth) => { const a = expr(rng, "text", depth - 1); const n = small(rng, -4, 4); return make("text", `right(${a.sql}, ${n.sql})`, `right(${a.duck}, ${n.duck})`, ["right"], [a]); }],
  [1, (rng, depth) => { const a = expr(rng, "text", depth - 1); const n = small(rng, -1, 8); const f = textLit(rng, ["x", "xy", "😀", " "]); return make("text", `lpad(${a.sql}, ${n.sql}, ${f.sql})`, `lpad(${a.duck}, CAST(${n.duck} AS INTEGER), ${f.duck})`, ["lpad"], [a]); }],
  [1, (rng, depth) => { const a = expr(rng, "text", depth - 1); const n = small(rng, -1, 8); const f = textLit(rng, ["x", "xy", "😀", " "]); return make("text", `rpad(${a.sql}, ${n.sql}, ${f.sql})`, `rpad(${a.duck}, CAST(${n.duck} AS INTEGER), ${f.duck})`, ["rpad"], [a]); }],
  [1, (rng, depth) => { const a = expr(rng, "text", depth - 1); const from = textLit(rng, SEARCH_TEXT.filter(Boolean)); const to = textLit(rng, ["", "X", "😀", "--"]); return make("text", `replace(${a.sql}, ${from.sql}, ${to.sql})`, `replace(${a.duck}, ${from.duck}, ${to.duck})`, ["replace"], [a]); }],
  [1, fn("text", "reverse", ["text"], ([a]) => `reverse(${a})`, ([a]) => `reverse(${a})`)],
  [1, fn("text", "trim", ["text"], ([a]) => `trim(${a})`, ([a]) => `trim(${a})`)],
  [1, fn("text", "ltrim", ["text"], ([a]) => `ltrim(${a})`, ([a]) => `ltrim(${a})`)],
  [1, (rng, depth) => { const a = expr(rng, "text", depth - 1); const c = textLit(rng, ["a", " x", "😀", "ab"]); return make("text", `btrim(${a.sql}, ${c.sql})`, `trim(${a.duck}, ${c.duck})`, ["btrim"], [a]); }],
  [2, fn("text", "concat", ["text", "text", "text"], ([a, b, c]) => `concat(${a}, ${b}, ${c})`, ([a, b, c]) => `concat(${a}, ${b}, ${c})`)],
  // DuckDB types `x || NULL::VARCHAR` as BLOB in some positions; say VARCHAR.
  [2, fn("text", "||", ["text", "text"], ([a, b]) => `(${a} || ${b})`, ([a, b]) => `CAST((${a} || ${b}) AS VARCHAR)`)],
  [1, fn("text", "concat_ws", ["text", "text"], ([a, b]) => `concat_ws('/', ${a}, ${b})`, ([a, b]) => `concat_ws('/', ${a}, ${b})`)],
  [1, (rng, depth) => { const a = expr(rng, "text", depth - 1); const d = textLit(rng, [",", "a", " ", "😀", "ll"]); const n = literal("int", rng.pick([1, 2, 3, -1, -2, 5])); return make("text", `split_part(${a.sql}, ${d.sql}, ${n.sql})`, `split_part(${a.duck}, ${d.duck}, ${n.duck})`, ["split_part"], [a]); }],
  [1, (rng, depth) => { const a = expr(rng, "text", depth - 1); const n = small(rng, -1, 3); return make("text", `repeat(${a.sql}, ${n.sql})`, `repeat(${a.duck}, ${n.duck})`, ["repeat"], [a]); }],
  [1, (rng, depth) => { const a = expr(rng, "text", depth - 1); const from = textLit(rng, ["ab", "lo", "é😀", "a"]); const to = textLit(rng, ["x", "XY", "", "😀"]); return make("text", `translate(${a.sql}, ${from.sql}, ${to.sql})`, `translate(${a.duck}, ${from.duck}, ${to.duck})`, ["translate"], [a]); }],
  [1, fn("text", "md5", ["text"], ([a]) => `md5(${a})`, ([a]) => `md5(${a})`)],
  [1, fn("text", "CAST(BIGINT AS TEXT)", ["int"], ([a]) => `CAST(${a} AS TEXT)`, ([a]) => `CAST(${a} AS VARCHAR)`)],
  [1, fn("text", "CAST(BOOLEAN AS TEXT)", ["bool"], ([a]) => `CAST(${a} AS TEXT)`, ([a]) => `CAST(${a} AS VARCHAR)`)],
  [
    1,
    (rng, depth) => {
      const ts = expr(rng, "ts", depth - 1);
      const fmt = rng.pick(["%Y-%m-%d", "%H:%M:%S", "%Y-%m-%d %H:%M", "%j", "%a %b %d %Y", "%A %B", "%y %p %I", "%%Y"]);
      return make("text", `to_char(${ts.sql}, '${fmt}')`, `strftime(${ts.duck}, '${fmt}')`, ["to_char"], [ts]);
    },
  ],
  [1, (rng) => { const c = rng.pick([65, 97, 233, 8364, 128512, 1]); return make("text", `chr(${c})`, `chr(${c})`, ["chr"], []); }],
  [
    1,
    (rng, depth) => {
      const [a, b] = [expr(rng, "text", depth - 1), expr(rng, "text", depth - 1)];
      const k = rng.pick([1, 2, 3]);
      const fnName = rng.pick(["map_values", "map_keys"]);
      // The value at key k, or an element of the keys / values (a key is never NULL: coalesce).
      if (rng.chance(0.5)) return make("text", `map([1, 2], [${a.sql}, ${b.sql}])[${k}]`, `map([1, 2], [${a.duck}, ${b.duck}])[${k}]`, ["map()[k]"], [a, b]);
      const list = fnName === "map_keys" ? `make_map(coalesce(${a.sql}, 'n'), 1)` : `make_map('p', ${a.sql}, 'q', ${b.sql})`;
      const duckList = fnName === "map_keys" ? `MAP {coalesce(${a.duck}, 'n'): 1}` : `MAP {'p': ${a.duck}, 'q': ${b.duck}}`;
      const at = fnName === "map_keys" ? 1 : k;
      return make("text", `${fnName}(${list})[${at}]`, `${fnName}(${duckList})[${at}]`, [fnName, "make_map"], [a, b]);
    },
  ],
];

const boolProductions: [number, Production][] = [
  [
    4,
    (rng, depth) => {
      const t = rng.pick<FuzzType>(["int", "float", "text", "ts", "int", "text"]);
      const op = rng.pick(["=", "<>", "<", "<=", ">", ">="]);
      const a = expr(rng, t, depth - 1);
      const b = expr(rng, t, depth - 1);
      return make("bool", `(${a.sql} ${op} ${b.sql})`, `(${a.duck} ${op} ${b.duck})`, [`${op} (${t})`], [a, b]);
    },
  ],
  [2, fn("bool", "AND", ["bool", "bool"], ([a, b]) => `(${a} AND ${b})`, ([a, b]) => `(${a} AND ${b})`)],
  [2, fn("bool", "OR", ["bool", "bool"], ([a, b]) => `(${a} OR ${b})`, ([a, b]) => `(${a} OR ${b})`)],
  [1, fn("bool", "NOT", ["bool"], ([a]) => `(NOT ${a})`, ([a]) => `(NOT ${a})`)],
  [1, (rng, depth) => { const a = expr(rng, rng.pick<FuzzType>(["int", "text", "float", "ts"]), depth - 1); return make("bool", `(${a.sql} IS NULL)`, `(${a.duck} IS NULL)`, ["IS NULL"], [a]); }],
  [
    1,
    (rng, depth) => {
      const t = rng.pick<FuzzType>(["int", "text", "float"]);
      const a = expr(rng, t, depth - 1);
      const b = expr(rng, t, depth - 1);
      const not = rng.chance(0.5) ? "NOT " : "";
      return make("bool", `(${a.sql} IS ${not}DISTINCT FROM ${b.sql})`, `(${a.duck} IS ${not}DISTINCT FROM ${b.duck})`, ["IS DISTINCT FROM"], [a, b]);
    },
  ],
  [
    1,
    (rng, depth) => {
      const t = rng.pick<FuzzType>(["int", "text", "float"]);
      const [a, lo, hi] = [expr(rng, t, depth - 1), expr(rng, t, 1), expr(rng, t, 1)];
      return make("bool", `(${a.sql} BETWEEN ${lo.sql} AND ${hi.sql})`, `(${a.duck} BETWEEN ${lo.duck} AND ${hi.duck})`, ["BETWEEN"], [a, lo, hi]);
    },
  ],
  [
    1,
    (rng, depth) => {
      const t = rng.pick<FuzzType>(["int", "text"]);
      const a = expr(rng, t, depth - 1);
      const items = Array.from({ length: rng.int(1, 4) }, () => literal(t, rng.chance(0.15) ? null : rng.pick(VALUES[t])));
      const not = rng.chance(0.3) ? "NOT " : "";
      return make("bool", `(${a.sql} ${not}IN (${items.map((x) => x.sql).join(", ")}))`, `(${a.duck} ${not}IN (${items.map((x) => x.duck).join(", ")}))`, ["IN"], [a]);
    },
  ],
  [
    2,
    (rng, depth) => {
      const a = expr(rng, "text", depth - 1);
      const pattern = Array.from({ length: rng.int(0, 4) }, () => rng.pick(PATTERN_TEXT)).join("");
      const op = rng.pick(["LIKE", "NOT LIKE", "ILIKE"]);
      const p = quote(pattern);
      return make("bool", `(${a.sql} ${op} ${p})`, `(${a.duck} ${op} ${p} ESCAPE '\\')`, [op], [a]);
    },
  ],
  [1, (rng, depth) => { const a = expr(rng, "text", depth - 1); const p = textLit(rng, SEARCH_TEXT); return make("bool", `starts_with(${a.sql}, ${p.sql})`, `starts_with(${a.duck}, ${p.duck})`, ["starts_with"], [a]); }],
  [1, (rng, depth) => { const a = expr(rng, "text", depth - 1); const p = textLit(rng, SEARCH_TEXT); return make("bool", `ends_with(${a.sql}, ${p.sql})`, `ends_with(${a.duck}, ${p.duck})`, ["ends_with"], [a]); }],
  [
    1,
    (rng, depth) => {
      const a = expr(rng, "text", depth - 1);
      const p = rng.pick(["^a", "b$", "l+", "^.$", "[a-c]", "o.*W", "^$", "\\s", "x?y", "é|😀"]);
      return make("bool", `regexp_like(${a.sql}, '${p}')`, `regexp_matches(${a.duck}, '${p}')`, ["regexp_like"], [a]);
    },
  ],
  [1, fn("bool", "isnan", ["float"], ([a]) => `isnan(${a})`, ([a]) => `isnan(${a})`)],
];

const tsProductions: [number, Production][] = [
  [
    2,
    (rng, depth) => {
      const ts = expr(rng, "ts", depth - 1);
      const n = rng.int(-400, 400);
      const unit = rng.pick(["SECOND", "MINUTE", "HOUR", "DAY", "WEEK"]);
      const op = rng.chance(0.5) ? "+" : "-";
      return make("ts", `(${ts.sql} ${op} INTERVAL '${n}' ${unit})`, `(${ts.duck} ${op} INTERVAL '${n}' ${unit})`, [`TIMESTAMP ${op} INTERVAL`], [ts]);
    },
  ],
  [
    2,
    (rng, depth) => {
      const ts = expr(rng, "ts", depth - 1);
      const unit = rng.pick(["year", "quarter", "month", "week", "day", "hour", "minute", "second"]);
      // DuckDB 1.5 compares date_trunc(u, NULL) with a constant as false, not NULL: guard the NULL.
      const duck = `(CASE WHEN ${ts.duck} IS NULL THEN NULL ELSE date_trunc('${unit}', ${ts.duck}) END)`;
      return make("ts", `date_trunc('${unit}', ${ts.sql})`, duck, [`date_trunc(${unit})`], [ts]);
    },
  ],
  [1, (rng) => { const n = rng.pick([0, 86400, -1, 1709164800, 951782400]); return make("ts", `to_timestamp(${n})`, `make_timestamp(CAST(${n} AS BIGINT) * 1000000)`, ["to_timestamp"], []); }],
  [1, fn("ts", "greatest", ["ts", "ts"], ([a, b]) => `greatest(${a}, ${b})`, ([a, b]) => `greatest(${a}, ${b})`)],
];

/** Productions open to every type: CASE, COALESCE, NULLIF. */
function generic(type: FuzzType): [number, Production][] {
  return [
    [
      1,
      (rng, depth) => {
        const c = expr(rng, "bool", depth - 1);
        const a = expr(rng, type, depth - 1);
        const b = expr(rng, type, depth - 1);
        return make(type, `CASE WHEN ${c.sql} THEN ${a.sql} ELSE ${b.sql} END`, `CASE WHEN ${c.duck} THEN ${a.duck} ELSE ${b.duck} END`, ["CASE"], [c, a, b]);
      },
    ],
    [1, fn(type, "coalesce", [type, type], ([a, b]) => `coalesce(${a}, ${b})`, ([a, b]) => `coalesce(${a}, ${b})`)],
    [1, fn(type, "nullif", [type, type], ([a, b]) => `nullif(${a}, ${b})`, ([a, b]) => `nullif(${a}, ${b})`)],
  ];
}

const PRODUCTIONS: Record<FuzzType, [number, Production][]> = {
  int: [...intProductions, ...generic("int")],
  float: [...floatProductions, ...generic("float")],
  text: [...textProductions, ...generic("text")],
  bool: [...boolProductions, ...generic("bool")],
  ts: [...tsProductions, ...generic("ts")],
};

function leaf(rng: Rng, type: FuzzType): Gen {
  const columns = COLUMNS.filter((c) => c.type === type && (type !== "int" || c.name !== "id"));
  if (columns.length > 0 && rng.chance(0.6)) {
    const c = rng.pick(columns);
    return { sql: c.name, duck: c.name, type, uses: [] };
  }
  return literal(type, rng.chance(0.08) ? null : rng.pick(VALUES[type]));
}

/** A random expression of `type`, at most `depth` levels deep. */
export function expr(rng: Rng, type: FuzzType, depth: number): Gen {
  if (depth <= 0 || rng.chance(0.25)) return leaf(rng, type);
  const options = PRODUCTIONS[type];
  const total = options.reduce((s, [w]) => s + w, 0);
  let x = rng.next() * total;
  for (const [w, p] of options) {
    x -= w;
    if (x <= 0) {
      const g = p(rng, depth);
      if (g) return g;
      break;
    }
  }
  return leaf(rng, type);
}
