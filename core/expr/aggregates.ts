/**
 * The aggregate function library: each built-in aggregate's arguments, result
 * type and accumulator, following DataFusion's definitions (Arroyo's SQL
 * engine). Accumulators keep state that checkpoints (`save`/`load` give a
 * MessagePack-able form), merge (hop windows combine panes) and, where the
 * math allows, retract (updating inputs); the planner refuses an aggregate
 * that cannot retract over an updating input.
 *
 * Arguments reach an accumulator as one value, or as an array when the call
 * has several value arguments or ORDER BY keys (`[x, y]` for corr(x, y),
 * `[x, key1, ...]` for array_agg(x ORDER BY key1, ...)). Constant parameters
 * (a percentile, a separator) are fixed when the accumulator is built.
 */
import { t, typeName, type SqlType } from "../plugin-api/index.ts";
import { hashValue } from "../state/hash.ts";
import type { ArgInfo, ArgKind } from "./functions.ts";
import { compareNumber, compareText, ExprError } from "./values.ts";

export interface Accumulator {
  init(): any;
  add(acc: any, value: unknown): any;
  /** Undo an add (updating inputs); absent when the function cannot. */
  retract?(acc: any, value: unknown): any;
  merge(a: any, b: any): any;
  result(acc: any): unknown;
  /** Convert state to/from its checkpoint form (MessagePack-friendly). */
  save?(acc: any): unknown;
  load?(saved: unknown): any;
}

/** How a call orders the values it aggregates (array_agg(x ORDER BY y DESC)). */
export interface AggregateOrder {
  desc: boolean;
  nullsFirst: boolean;
}

export interface AggregateFunction {
  name: string;
  /** Kinds of the value arguments, then of the constant parameters. */
  args: ArgKind[];
  /** How many leading arguments are values read per row; the rest are constants (default: all). */
  values?: number;
  /** Arguments that may be left out at the end (default 0). */
  optional?: number;
  returns: (args: ArgInfo[]) => SqlType;
  /** Checks constant parameters at planning time; throw an ExprError. */
  check?(args: ArgInfo[]): void;
  /** Whether ORDER BY inside the call changes the result (array_agg, string_agg, first_value, last_value). */
  ordered?: boolean;
  /** Whether the accumulator can retract, so the aggregate can read updating input. */
  retractable: boolean;
  /** Approximate: refused in updating mode with this reason. */
  approximate?: boolean;
  accumulator(args: ArgInfo[], order: AggregateOrder[]): Accumulator;
}

const isNull = (v: unknown) => v === null || v === undefined;
const double = t.double();
const bigint = t.bigint();
const first = (args: ArgInfo[]) => args[0]!.type;
const isNumeric = (x: SqlType) => x.kind === "int" || x.kind === "float" || x.kind === "decimal";

/** SQL order for values: text by code point, floats with NaN above every number. */
export function compareValues(a: any, b: any): number {
  if (typeof a === "string" && typeof b === "string") return compareText(a, b);
  if (typeof a === "number" && typeof b === "number") return compareNumber(a, b);
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A comparator over sort keys, NULLs placed as asked. */
export function keyComparator(order: AggregateOrder[]): (a: readonly unknown[], b: readonly unknown[]) => number {
  return (a, b) => {
    for (let i = 0; i < order.length; i++) {
      const c = compareKey(a[i], b[i], order[i]!);
      if (c !== 0) return c;
    }
    return 0;
  };
}

/** Two values of one sort key, in the order `o` asks for, NULLs placed as asked. */
export function compareKey(x: unknown, y: unknown, o: AggregateOrder): number {
  if (isNull(x) || isNull(y)) {
    if (isNull(x) && isNull(y)) return 0;
    return isNull(x) === o.nullsFirst ? -1 : 1;
  }
  const c = compareValues(x, y);
  return o.desc ? -c : c;
}

// ---------------------------------------------------------------- count, sum, avg, min, max

export const count: Accumulator = {
  init: () => 0,
  add: (acc, v) => (isNull(v) ? acc : acc + 1),
  retract: (acc, v) => (isNull(v) ? acc : acc - 1),
  merge: (a, b) => a + b,
  result: (acc) => acc,
};

export const countStar: Accumulator = {
  init: () => 0,
  add: (acc) => acc + 1,
  retract: (acc) => acc - 1,
  merge: (a, b) => a + b,
  result: (acc) => acc,
};

// sum keeps [total, non-null count] so an all-NULL group yields NULL, as in SQL.
export const sum: Accumulator = {
  init: () => [0, 0],
  add: (acc, v) => {
    if (isNull(v)) return acc;
    acc[0] += v as number;
    acc[1]++;
    return acc;
  },
  retract: (acc, v) => {
    if (isNull(v)) return acc;
    acc[0] -= v as number;
    acc[1]--;
    return acc;
  },
  merge: (a, b) => [a[0] + b[0], a[1] + b[1]],
  result: (acc) => (acc[1] === 0 ? null : acc[0]),
};

export const avg: Accumulator = { ...sum, result: (acc) => (acc[1] === 0 ? null : acc[0] / acc[1]) };

/** Adds integers; a total Runnel cannot hold exactly stops the job rather than being rounded. */
function exactAdd(a: number, b: number): number {
  const total = a + b;
  if (total > Number.MAX_SAFE_INTEGER || total < -Number.MAX_SAFE_INTEGER) {
    throw new ExprError(
      `integer overflow: sum() reached ${BigInt(a) + BigInt(b)}, beyond ±${Number.MAX_SAFE_INTEGER} (2^53 − 1), the largest integer Runnel holds exactly; ` +
        "sum CAST(x AS DOUBLE) to add approximately",
    );
  }
  return total;
}

export const intSum: Accumulator = {
  ...sum,
  add: (acc, v) => {
    if (isNull(v)) return acc;
    acc[0] = exactAdd(acc[0], v as number);
    acc[1]++;
    return acc;
  },
  merge: (a, b) => [exactAdd(a[0], b[0]), a[1] + b[1]],
};

export function extreme(better: (a: any, b: any) => boolean): Accumulator {
  return {
    init: () => null,
    add: (acc, v) => (isNull(v) ? acc : acc === null || better(v, acc) ? v : acc),
    merge: (a, b) => (a === null ? b : b === null ? a : better(b, a) ? b : a),
    result: (acc) => acc,
  };
}

/** A multiset of values (value → count): what retracting min, max, DISTINCT and exact percentiles need. */
const multiset: Omit<Accumulator, "result"> = {
  init: () => new Map<unknown, number>(),
  add: (acc: Map<unknown, number>, v) => {
    if (!isNull(v)) acc.set(v, (acc.get(v) ?? 0) + 1);
    return acc;
  },
  retract: (acc: Map<unknown, number>, v) => {
    const c = acc.get(v);
    if (c !== undefined) c <= 1 ? acc.delete(v) : acc.set(v, c - 1);
    return acc;
  },
  merge: (a: Map<unknown, number>, b: Map<unknown, number>) => {
    for (const [v, c] of b) a.set(v, (a.get(v) ?? 0) + c);
    return a;
  },
  save: (acc: Map<unknown, number>) => [...acc],
  load: (saved) => new Map(saved as [unknown, number][]),
};

/** min/max over an updating input need every value. */
export function retractableExtreme(better: (a: any, b: any) => boolean): Accumulator {
  return {
    ...multiset,
    result: (acc: Map<unknown, number>) => {
      let best: unknown = null;
      for (const v of acc.keys()) if (best === null || better(v, best)) best = v;
      return best;
    },
  };
}

export const countDistinct: Accumulator = { ...multiset, result: (acc: Map<unknown, number>) => acc.size };

/** DISTINCT: the inner aggregate over the distinct values (kept with multiplicities, so it can retract). */
export function distinctOf(inner: Accumulator): Accumulator {
  return {
    ...multiset,
    result: (acc: Map<unknown, number>) => {
      let state = inner.init();
      for (const v of acc.keys()) state = inner.add(state, v);
      return inner.result(state);
    },
  };
}

const gt = (a: any, b: any) => compareValues(a, b) > 0;
const lt = (a: any, b: any) => compareValues(a, b) < 0;
// Integers (numbers or bigints, which `<` compares exactly with each other) have no NaN: the operator is SQL's order.
const intGt = (a: number | bigint, b: number | bigint) => a > b;
const intLt = (a: number | bigint, b: number | bigint) => a < b;

// ---------------------------------------------------------------- variance, covariance, regression

/** Welford's running mean and sum of squared deviations: [n, mean, m2], with removal and Chan's merge. */
const moments: Omit<Accumulator, "result"> = {
  init: () => [0, 0, 0],
  add: (s, v) => {
    if (isNull(v)) return s;
    const x = v as number;
    const n = ++s[0];
    const d = x - s[1];
    s[1] += d / n;
    s[2] += d * (x - s[1]);
    return s;
  },
  retract: (s, v) => {
    if (isNull(v)) return s;
    const x = v as number;
    const n = s[0];
    if (n <= 1) return [0, 0, 0];
    const mean = (n * s[1] - x) / (n - 1);
    s[2] -= (x - s[1]) * (x - mean);
    s[0] = n - 1;
    s[1] = mean;
    return s;
  },
  merge: (a, b) => {
    if (b[0] === 0) return a;
    if (a[0] === 0) return [b[0], b[1], b[2]];
    const n = a[0] + b[0];
    const d = b[1] - a[1];
    return [n, a[1] + (d * b[0]) / n, a[2] + b[2] + (d * d * a[0] * b[0]) / n];
  },
};

const varianceOf = (sample: boolean, root: boolean, exact: boolean): Accumulator => {
  const result = (n: number, m2: number) => {
    if (n === 0 || (sample && n < 2)) return null;
    const v = Math.max(0, m2) / (sample ? n - 1 : n);
    return root ? Math.sqrt(v) : v;
  };
  if (!exact) return { ...moments, result: (s) => result(s[0], s[2]) };
  return {
    ...exactSums,
    add: (s, v) => exactSums.add(s, [v, v]),
    retract: (s, v) => exactSums.retract!(s, [v, v]),
    result: (s: bigint[]) => (s[0] === 0n ? null : result(Number(s[0]), momentsOfSums(s)[3]!)),
  };
};

/** Co-moments of (y, x): [n, meanX, meanY, m2X, m2Y, cXY]; rows where either is NULL are skipped. */
const comoments: Omit<Accumulator, "result"> = {
  init: () => [0, 0, 0, 0, 0, 0],
  add: (s, v) => {
    const [y, x] = v as [number | null, number | null];
    if (isNull(x) || isNull(y)) return s;
    const n = ++s[0];
    const dx = x! - s[1];
    s[1] += dx / n;
    const dy = y! - s[2];
    s[2] += dy / n;
    s[3] += dx * (x! - s[1]);
    s[4] += dy * (y! - s[2]);
    s[5] += dx * (y! - s[2]);
    return s;
  },
  retract: (s, v) => {
    const [y, x] = v as [number | null, number | null];
    if (isNull(x) || isNull(y)) return s;
    const n = s[0];
    if (n <= 1) return [0, 0, 0, 0, 0, 0];
    const mx = (n * s[1] - x!) / (n - 1);
    const my = (n * s[2] - y!) / (n - 1);
    s[3] -= (x! - s[1]) * (x! - mx);
    s[4] -= (y! - s[2]) * (y! - my);
    s[5] -= (x! - mx) * (y! - s[2]);
    s[0] = n - 1;
    s[1] = mx;
    s[2] = my;
    return s;
  },
  merge: (a, b) => {
    if (b[0] === 0) return a;
    if (a[0] === 0) return b.slice();
    const n = a[0] + b[0];
    const dx = b[1] - a[1];
    const dy = b[2] - a[2];
    const w = (a[0] * b[0]) / n;
    return [n, a[1] + (dx * b[0]) / n, a[2] + (dy * b[0]) / n, a[3] + b[3] + dx * dx * w, a[4] + b[4] + dy * dy * w, a[5] + b[5] + dx * dy * w];
  },
};

/**
 * Integer inputs keep exact power sums [n, Σx, Σy, Σx², Σy², Σxy] as BigInts
 * instead: retracting from floating-point moments leaves rounding residue (a
 * variance of equal values that should be 0, a correlation that should be NULL).
 * Values arrive as [y, x].
 */
const exactSums: Omit<Accumulator, "result"> = {
  init: () => [0n, 0n, 0n, 0n, 0n, 0n],
  add: (s: bigint[], v) => {
    const [y, x] = v as [number | null, number | null];
    if (isNull(x) || isNull(y)) return s;
    const X = BigInt(x!);
    const Y = BigInt(y!);
    s[0]! += 1n;
    s[1]! += X;
    s[2]! += Y;
    s[3]! += X * X;
    s[4]! += Y * Y;
    s[5]! += X * Y;
    return s;
  },
  retract: (s: bigint[], v) => {
    const [y, x] = v as [number | null, number | null];
    if (isNull(x) || isNull(y)) return s;
    const X = BigInt(x!);
    const Y = BigInt(y!);
    s[0]! -= 1n;
    s[1]! -= X;
    s[2]! -= Y;
    s[3]! -= X * X;
    s[4]! -= Y * Y;
    s[5]! -= X * Y;
    return s;
  },
  merge: (a: bigint[], b: bigint[]) => a.map((x, i) => x + b[i]!),
  save: (s: bigint[]) => s.map(String),
  load: (saved) => (saved as string[]).map((x) => BigInt(x)),
};

/** The co-moments [n, meanX, meanY, m2X, m2Y, cXY] of exact sums; each centred sum is exact before its one division. */
function momentsOfSums(s: bigint[]): number[] {
  const [n, sx, sy, sxx, syy, sxy] = s as [bigint, bigint, bigint, bigint, bigint, bigint];
  const N = Number(n);
  return [N, Number(sx) / N, Number(sy) / N, Number(n * sxx - sx * sx) / N, Number(n * syy - sy * sy) / N, Number(n * sxy - sx * sy) / N];
}

type ComomentFn = (n: number, mx: number, my: number, sxx: number, syy: number, sxy: number) => number | null;

/** corr, covar and regr_* as functions of the co-moments; arguments (y, x) as SQL writes regr_slope(y, x). */
const comomentResult = (f: ComomentFn, exact = false): Accumulator =>
  exact
    ? { ...exactSums, result: (s: bigint[]) => (s[0] === 0n ? null : f(...(momentsOfSums(s) as [number, number, number, number, number, number]))) }
    : { ...comoments, result: (s) => (s[0] === 0 ? null : f(s[0], s[1], s[2], s[3], s[4], s[5])) };

const REGRESSION: Record<string, ComomentFn> = {
  covar: (n, _mx, _my, _sxx, _syy, sxy) => (n < 2 ? null : sxy / (n - 1)),
  covar_samp: (n, _mx, _my, _sxx, _syy, sxy) => (n < 2 ? null : sxy / (n - 1)),
  covar_pop: (n, _mx, _my, _sxx, _syy, sxy) => sxy / n,
  corr: (n, _mx, _my, sxx, syy, sxy) => (n < 2 || sxx <= 0 || syy <= 0 ? null : sxy / Math.sqrt(sxx * syy)),
  regr_slope: (n, _mx, _my, sxx, _syy, sxy) => (n < 2 || sxx === 0 ? null : sxy / sxx),
  regr_intercept: (n, mx, my, sxx, _syy, sxy) => (n < 2 || sxx === 0 ? null : my - (sxy / sxx) * mx),
  regr_r2: (n, _mx, _my, sxx, syy, sxy) => (n < 2 || sxx === 0 ? null : syy === 0 ? 1 : (sxy * sxy) / (sxx * syy)),
  regr_avgx: (_n, mx) => mx,
  regr_avgy: (_n, _mx, my) => my,
  regr_sxx: (_n, _mx, _my, sxx) => sxx,
  regr_syy: (_n, _mx, _my, _sxx, syy) => syy,
  regr_sxy: (_n, _mx, _my, _sxx, _syy, sxy) => sxy,
};

// ---------------------------------------------------------------- booleans and bits

/** [true count, non-null count]: bool_and is all true, bool_or any true; both retract. */
const boolCounts = (all: boolean): Accumulator => ({
  init: () => [0, 0],
  add: (s, v) => {
    if (isNull(v)) return s;
    if (v === true) s[0]++;
    s[1]++;
    return s;
  },
  retract: (s, v) => {
    if (isNull(v)) return s;
    if (v === true) s[0]--;
    s[1]--;
    return s;
  },
  merge: (a, b) => [a[0] + b[0], a[1] + b[1]],
  result: (s) => (s[1] === 0 ? null : all ? s[0] === s[1] : s[0] > 0),
});

/** Bit aggregates over 64-bit integers: per-bit counts of ones (so AND and OR retract), plus the count of values. */
const BITS = 64;
function bitsOf(v: number): bigint {
  return BigInt.asUintN(64, BigInt(v));
}
const bitCounts = (op: "and" | "or" | "xor"): Accumulator => ({
  init: () => ({ n: 0, ones: new Array<number>(BITS).fill(0) }),
  add: (s, v) => {
    if (isNull(v)) return s;
    let b = bitsOf(v as number);
    for (let i = 0; b !== 0n; i++, b >>= 1n) if (b & 1n) s.ones[i]++;
    s.n++;
    return s;
  },
  retract: (s, v) => {
    if (isNull(v)) return s;
    let b = bitsOf(v as number);
    for (let i = 0; b !== 0n; i++, b >>= 1n) if (b & 1n) s.ones[i]--;
    s.n--;
    return s;
  },
  merge: (a, b) => ({ n: a.n + b.n, ones: a.ones.map((x: number, i: number) => x + b.ones[i]) }),
  result: (s) => {
    if (s.n === 0) return null;
    let out = 0n;
    for (let i = BITS - 1; i >= 0; i--) {
      const c = s.ones[i] as number;
      const bit = op === "and" ? c === s.n : op === "or" ? c > 0 : c % 2 === 1;
      out = (out << 1n) | (bit ? 1n : 0n);
    }
    return Number(BigInt.asIntN(64, out));
  },
});

// ---------------------------------------------------------------- lists: array_agg, string_agg, first_value, last_value

/** Entries [value, ...order keys] in arrival order; retraction removes one equal entry. */
function entryEquals(a: unknown[], b: unknown[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

function listOf(ordered: boolean, keep: (v: unknown) => boolean, result: (values: unknown[]) => unknown, order: AggregateOrder[]): Accumulator {
  const cmp = keyComparator(order);
  const entry = (v: unknown): unknown[] => (ordered ? (v as unknown[]) : [v]);
  return {
    init: () => [],
    add: (list: unknown[][], v) => {
      const e = entry(v);
      if (keep(e[0])) list.push(e);
      return list;
    },
    retract: (list: unknown[][], v) => {
      const e = entry(v);
      const i = list.findIndex((x) => entryEquals(x, e));
      if (i >= 0) list.splice(i, 1);
      return list;
    },
    merge: (a: unknown[][], b: unknown[][]) => a.concat(b),
    result: (list: unknown[][]) => {
      const sorted = order.length > 0 ? list.slice().sort((a, b) => cmp(a.slice(1), b.slice(1))) : list;
      return result(sorted.map((e) => e[0]));
    },
  };
}

// ---------------------------------------------------------------- percentiles

/** The continuous percentile of sorted values (linear interpolation between the nearest ranks), as DataFusion's percentile_cont. */
function percentileOf(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

const exactPercentile = (p: number, median: boolean, intResult: boolean): Accumulator => ({
  ...multiset,
  result: (acc: Map<number, number>) => {
    const values: number[] = [];
    for (const [v, c] of acc) for (let i = 0; i < c; i++) values.push(v);
    values.sort(compareNumber);
    if (median && intResult) {
      // DataFusion's median of integers averages the middle two in integer arithmetic.
      if (values.length === 0) return null;
      const m = values.length >> 1;
      return values.length % 2 === 1 ? values[m]! : Math.trunc((values[m - 1]! + values[m]!) / 2);
    }
    return percentileOf(values, p);
  },
});

/**
 * A merging t-digest (Dunning): centroids of bounded size (compression 100, as
 * DataFusion's), so approximate percentiles use little memory per group.
 */
const COMPRESSION = 100;
interface Digest {
  means: number[];
  weights: number[];
  buffer: number[];
  min: number;
  max: number;
}

function compress(d: Digest, force = false): void {
  if (d.buffer.length === 0 && !force) return;
  if (d.means.length === 0 && d.buffer.length === 0) return;
  const points: [number, number][] = d.means.map((m, i) => [m, d.weights[i]!]);
  for (const v of d.buffer) points.push([v, 1]);
  d.buffer = [];
  points.sort((a, b) => a[0] - b[0]);
  const total = points.reduce((s, p) => s + p[1], 0);
  const means: number[] = [];
  const weights: number[] = [];
  let seen = 0;
  let curMean = points[0]![0];
  let curWeight = points[0]![1];
  // k1 scale: a centroid may span at most the weight the scale function allows at its quantile.
  const k = (q: number) => (COMPRESSION / (2 * Math.PI)) * Math.asin(2 * Math.min(1, Math.max(0, q)) - 1);
  let limit = k(0) + 1;
  for (let i = 1; i < points.length; i++) {
    const [m, w] = points[i]!;
    const q = (seen + curWeight + w) / total;
    if (k(q) <= limit) {
      curMean += ((m - curMean) * w) / (curWeight + w);
      curWeight += w;
    } else {
      means.push(curMean);
      weights.push(curWeight);
      seen += curWeight;
      limit = k(seen / total) + 1;
      curMean = m;
      curWeight = w;
    }
  }
  means.push(curMean);
  weights.push(curWeight);
  d.means = means;
  d.weights = weights;
}

function digestQuantile(d: Digest, q: number): number | null {
  compress(d);
  const n = d.weights.reduce((s, w) => s + w, 0);
  if (n === 0) return null;
  if (d.means.length === 1) return d.means[0]!;
  const target = q * n;
  // Each centroid's weight is centred on its mean; interpolate between neighbours, clamped to the extremes.
  let cumulative = 0;
  for (let i = 0; i < d.means.length; i++) {
    const w = d.weights[i]!;
    const centre = cumulative + w / 2;
    if (target < centre) {
      if (i === 0) {
        const left = d.min;
        return w <= 1 ? d.means[0]! : left + ((d.means[0]! - left) * target) / centre;
      }
      const prevCentre = cumulative - d.weights[i - 1]! / 2;
      const t = (target - prevCentre) / (centre - prevCentre);
      return d.means[i - 1]! + t * (d.means[i]! - d.means[i - 1]!);
    }
    cumulative += w;
  }
  const last = d.means.length - 1;
  const lastCentre = n - d.weights[last]! / 2;
  if (d.weights[last]! <= 1) return d.means[last]!;
  return d.means[last]! + ((d.max - d.means[last]!) * (target - lastCentre)) / (n - lastCentre);
}

const tdigest = (p: number): Accumulator => ({
  init: (): Digest => ({ means: [], weights: [], buffer: [], min: Infinity, max: -Infinity }),
  add: (d: Digest, v) => {
    if (isNull(v) || Number.isNaN(v)) return d;
    const x = v as number;
    d.buffer.push(x);
    if (x < d.min) d.min = x;
    if (x > d.max) d.max = x;
    if (d.buffer.length >= COMPRESSION * 5) compress(d);
    return d;
  },
  merge: (a: Digest, b: Digest) => {
    compress(b);
    a.means.push(...b.means);
    a.weights.push(...b.weights);
    a.min = Math.min(a.min, b.min);
    a.max = Math.max(a.max, b.max);
    compress(a, true);
    return a;
  },
  result: (d: Digest) => digestQuantile(d, p),
  save: (d: Digest) => {
    compress(d);
    return [d.means, d.weights, d.min, d.max];
  },
  load: (saved) => {
    const [means, weights, min, max] = saved as [number[], number[], number, number];
    return { means, weights, buffer: [], min, max };
  },
});

// ---------------------------------------------------------------- approx_distinct: HyperLogLog

const HLL_P = 14;
const HLL_M = 1 << HLL_P;
/** Exact hashes are kept until this many, then registers (16 KiB) take over. */
const HLL_SPARSE_MAX = 1024;

interface Hll {
  sparse: Set<number> | null;
  registers: Uint8Array | null;
}

function hllAddHash(registers: Uint8Array, h: number): void {
  const index = h >>> (32 - HLL_P);
  const rest = (h << HLL_P) >>> 0;
  const rank = rest === 0 ? 32 - HLL_P + 1 : Math.clz32(rest) + 1;
  if (rank > registers[index]!) registers[index] = rank;
}

function densify(s: Hll): Uint8Array {
  if (!s.registers) {
    s.registers = new Uint8Array(HLL_M);
    for (const h of s.sparse!) hllAddHash(s.registers, h);
    s.sparse = null;
  }
  return s.registers;
}

function hllEstimate(registers: Uint8Array): number {
  let sum = 0;
  let zeros = 0;
  for (let i = 0; i < HLL_M; i++) {
    sum += 2 ** -registers[i]!;
    if (registers[i] === 0) zeros++;
  }
  const alpha = 0.7213 / (1 + 1.079 / HLL_M);
  let e = (alpha * HLL_M * HLL_M) / sum;
  if (e <= 2.5 * HLL_M && zeros > 0) e = HLL_M * Math.log(HLL_M / zeros);
  else if (e > 2 ** 32 / 30) e = -(2 ** 32) * Math.log(1 - e / 2 ** 32);
  return Math.round(e);
}

const approxDistinct: Accumulator = {
  init: (): Hll => ({ sparse: new Set(), registers: null }),
  add: (s: Hll, v) => {
    if (isNull(v)) return s;
    const h = hashValue(v);
    if (s.sparse) {
      s.sparse.add(h);
      if (s.sparse.size > HLL_SPARSE_MAX) densify(s);
    } else hllAddHash(s.registers!, h);
    return s;
  },
  merge: (a: Hll, b: Hll) => {
    if (a.sparse && b.sparse) {
      for (const h of b.sparse) a.sparse.add(h);
      if (a.sparse.size > HLL_SPARSE_MAX) densify(a);
      return a;
    }
    const ra = densify(a);
    if (b.sparse) for (const h of b.sparse) hllAddHash(ra, h);
    else for (let i = 0; i < HLL_M; i++) if (b.registers![i]! > ra[i]!) ra[i] = b.registers![i]!;
    return a;
  },
  result: (s: Hll) => (s.sparse ? s.sparse.size : hllEstimate(s.registers!)),
  save: (s: Hll) => (s.sparse ? [0, [...s.sparse]] : [1, s.registers]),
  load: (saved) => {
    const [kind, data] = saved as [number, number[] | Uint8Array];
    return kind === 0 ? { sparse: new Set(data as number[]), registers: null } : { sparse: null, registers: new Uint8Array(data as Uint8Array) };
  },
};

// ---------------------------------------------------------------- the list

const constant = (args: ArgInfo[], i: number): unknown => args[i]?.literal?.value;

function fractionParam(name: string, at: number) {
  return (args: ArgInfo[]) => {
    const p = constant(args, at);
    if (args[at] && !args[at]!.literal) throw new ExprError(`${name}(): the percentile must be a constant between 0 and 1`);
    if (typeof p === "number" && !(p >= 0 && p <= 1)) throw new ExprError(`${name}(): the percentile must be between 0 and 1, got ${p}`);
  };
}

const numberArg = (name: string) => (args: ArgInfo[]) => {
  if (args[0] && args[0].literal?.value !== null && !isNumeric(args[0].type)) throw new ExprError(`${name}() needs numbers, got ${typeName(args[0].type)}`);
};

function fn(name: string, def: Omit<AggregateFunction, "name">): AggregateFunction {
  return { name, ...def };
}

/** Whether every value argument is an integer (exact sums then). */
const allInt = (args: ArgInfo[]) => args.every((a) => a.type.kind === "int" || a.literal?.value === null);

const variance = (name: string, sample: boolean, root: boolean) =>
  fn(name, { args: ["number"], returns: () => double, retractable: true, check: numberArg(name), accumulator: (a) => varianceOf(sample, root, allInt(a)) });

const list: AggregateFunction[] = [
  variance("stddev", true, true),
  variance("stddev_samp", true, true),
  variance("stddev_pop", false, true),
  variance("var", true, false),
  variance("variance", true, false),
  variance("var_samp", true, false),
  variance("var_sample", true, false),
  variance("var_pop", false, false),
  variance("var_population", false, false),
  ...Object.keys(REGRESSION).map((name) =>
    fn(name, { args: ["number", "number"], returns: () => double, retractable: true, accumulator: (a) => comomentResult(REGRESSION[name]!, allInt(a)) }),
  ),
  fn("regr_count", {
    args: ["number", "number"],
    returns: () => bigint,
    retractable: true,
    accumulator: (a) => (allInt(a) ? { ...exactSums, result: (s: bigint[]) => Number(s[0]) } : { ...comoments, result: (s: number[]) => s[0] }),
  }),
  fn("median", {
    args: ["number"],
    returns: (a) => (a[0]!.type.kind === "int" ? bigint : double),
    retractable: true,
    check: numberArg("median"),
    accumulator: (a) => exactPercentile(0.5, true, a[0]!.type.kind === "int"),
  }),
  fn("percentile_cont", {
    args: ["number", "number"],
    values: 1,
    returns: () => double,
    retractable: true,
    check: (a) => {
      numberArg("percentile_cont")(a);
      fractionParam("percentile_cont", 1)(a);
    },
    accumulator: (a) => exactPercentile(constant(a, 1) as number, false, false),
  }),
  fn("approx_median", { args: ["number"], returns: () => double, retractable: false, approximate: true, check: numberArg("approx_median"), accumulator: () => tdigest(0.5) }),
  fn("approx_percentile_cont", {
    args: ["number", "number", "int"],
    values: 1,
    optional: 1,
    returns: () => double,
    retractable: false,
    approximate: true,
    check: (a) => {
      numberArg("approx_percentile_cont")(a);
      fractionParam("approx_percentile_cont", 1)(a);
    },
    accumulator: (a) => tdigest(constant(a, 1) as number),
  }),
  fn("approx_distinct", { args: ["any"], returns: () => bigint, retractable: false, approximate: true, accumulator: () => approxDistinct }),
  fn("array_agg", {
    args: ["any"],
    returns: (a) => t.array(first(a)),
    ordered: true,
    retractable: true,
    accumulator: (_a, order) => listOf(order.length > 0, () => true, (values) => (values.length === 0 ? null : values), order),
  }),
  fn("string_agg", {
    args: ["text", "text"],
    values: 1,
    returns: () => t.string(),
    ordered: true,
    retractable: true,
    check: (a) => {
      if (a[1] && a[1].literal === undefined) throw new ExprError("string_agg(): the separator must be a constant");
    },
    accumulator: (a, order) => {
      const sep = String(constant(a, 1) ?? "");
      return listOf(order.length > 0, (v) => !isNull(v), (values) => (values.length === 0 ? null : values.join(sep)), order);
    },
  }),
  ...(["first_value", "last_value"] as const).map((name) =>
    fn(name, {
      args: ["any"],
      returns: first,
      ordered: true,
      retractable: true,
      accumulator: (_a, order) => listOf(order.length > 0, () => true, (values) => (values.length === 0 ? null : (name === "first_value" ? values[0] : values[values.length - 1]) ?? null), order),
    }),
  ),
  fn("any_value", {
    args: ["any"],
    returns: first,
    retractable: true,
    accumulator: () => listOf(false, (v) => !isNull(v), (values) => values[0] ?? null, []),
  }),
  fn("bool_and", { args: ["boolean"], returns: () => t.boolean(), retractable: true, accumulator: () => boolCounts(true) }),
  fn("bool_or", { args: ["boolean"], returns: () => t.boolean(), retractable: true, accumulator: () => boolCounts(false) }),
  ...(["and", "or", "xor"] as const).map((op) =>
    fn(`bit_${op}`, { args: ["int"], returns: first, retractable: true, accumulator: () => bitCounts(op) }),
  ),
];

/** Aggregates beyond count, sum, avg, min and max, by name. */
export const AGGREGATE_FUNCTIONS: ReadonlyMap<string, AggregateFunction> = new Map(list.map((f) => [f.name, f]));

/** count, sum, avg, min, max (typed by the planner itself), and their accumulators. */
export const CORE_AGGREGATES = new Set(["count", "sum", "avg", "min", "max"]);

export function coreAccumulator(fn: string, star: boolean, type: SqlType, updating: boolean): Accumulator {
  switch (fn) {
    case "count":
      return star ? countStar : count;
    case "sum":
      return type.kind === "int" ? intSum : sum;
    case "avg":
      return avg;
    case "min":
      return updating ? retractableExtreme(lt) : extreme(type.kind === "int" ? intLt : lt);
    case "max":
      return updating ? retractableExtreme(gt) : extreme(type.kind === "int" ? intGt : gt);
  }
  throw new Error(`not a core aggregate: ${fn}`);
}
