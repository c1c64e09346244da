/**
 * Aggregate functions as accumulators with JSON-serialisable state. `add`
 * returns the new state so plain numbers need no allocation per record.
 */
import type { UdafDefinition } from "../plugin-api/index.ts";
import type { AggregateCall } from "../plan/logical.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { compareNumber, compareText, ExprError } from "../expr/values.ts";

export interface Accumulator {
  init(): any;
  add(acc: any, value: unknown): any;
  /** Undo an add (updating inputs); absent when the function cannot. */
  retract?(acc: any, value: unknown): any;
  merge(a: any, b: any): any;
  result(acc: any): unknown;
  /** Convert state to/from its checkpoint form (JSON-friendly). */
  save?(acc: any): unknown;
  load?(saved: unknown): any;
}

const count: Accumulator = {
  init: () => 0,
  add: (acc, v) => (v === null || v === undefined ? acc : acc + 1),
  retract: (acc, v) => (v === null || v === undefined ? acc : acc - 1),
  merge: (a, b) => a + b,
  result: (acc) => acc,
};

const countStar: Accumulator = {
  init: () => 0,
  add: (acc) => acc + 1,
  retract: (acc) => acc - 1,
  merge: (a, b) => a + b,
  result: (acc) => acc,
};

// sum keeps [total, non-null count] so an all-NULL group yields NULL, as in SQL.
const sum: Accumulator = {
  init: () => [0, 0],
  add: (acc, v) => {
    if (v === null || v === undefined) return acc;
    acc[0] += v as number;
    acc[1]++;
    return acc;
  },
  retract: (acc, v) => {
    if (v === null || v === undefined) return acc;
    acc[0] -= v as number;
    acc[1]--;
    return acc;
  },
  merge: (a, b) => [a[0] + b[0], a[1] + b[1]],
  result: (acc) => (acc[1] === 0 ? null : acc[0]),
};

const avg: Accumulator = { ...sum, result: (acc) => (acc[1] === 0 ? null : acc[0] / acc[1]) };

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

const intSum: Accumulator = {
  ...sum,
  add: (acc, v) => {
    if (v === null || v === undefined) return acc;
    acc[0] = exactAdd(acc[0], v as number);
    acc[1]++;
    return acc;
  },
  merge: (a, b) => [exactAdd(a[0], b[0]), a[1] + b[1]],
};

function extreme(better: (a: any, b: any) => boolean): Accumulator {
  return {
    init: () => null,
    add: (acc, v) => (v === null || v === undefined ? acc : acc === null || better(v, acc) ? v : acc),
    merge: (a, b) => (a === null ? b : b === null ? a : better(b, a) ? b : a),
    result: (acc) => acc,
  };
}

/** min/max over an updating input need every value: a multiset of value → count. */
function retractableExtreme(better: (a: any, b: any) => boolean): Accumulator {
  return {
    init: () => new Map<unknown, number>(),
    add: (acc: Map<unknown, number>, v) => {
      if (v !== null && v !== undefined) acc.set(v, (acc.get(v) ?? 0) + 1);
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
    result: (acc: Map<unknown, number>) => {
      let best: unknown = null;
      for (const v of acc.keys()) if (best === null || better(v, best)) best = v;
      return best;
    },
    save: (acc: Map<unknown, number>) => [...acc],
    load: (saved) => new Map(saved as [unknown, number][]),
  };
}

// DISTINCT keeps value → multiplicity so it can also retract.
const countDistinct: Accumulator = {
  init: () => new Map<unknown, number>(),
  add: (acc: Map<unknown, number>, v) => {
    if (v !== null && v !== undefined) acc.set(v, (acc.get(v) ?? 0) + 1);
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
  result: (acc: Map<unknown, number>) => acc.size,
  save: (acc: Map<unknown, number>) => [...acc],
  load: (saved) => new Map(saved as [unknown, number][]),
};

function distinctOf(inner: Accumulator): Accumulator {
  return {
    ...countDistinct,
    result: (acc: Map<unknown, number>) => {
      let state = inner.init();
      for (const v of acc.keys()) state = inner.add(state, v);
      return inner.result(state);
    },
  };
}

function udafAccumulator(u: UdafDefinition<any>): Accumulator {
  return {
    init: () => u.init(),
    add: (acc, v) => u.add(acc, ...(v as unknown[])),
    retract: u.retract ? (acc, v) => u.retract!(acc, ...(v as unknown[])) : undefined,
    merge: (a, b) => {
      if (!u.merge) throw new Error(`aggregate '${u.name}' has no merge and cannot be used in hop windows`);
      return u.merge(a, b);
    },
    result: (acc) => u.result(acc),
    save: (acc) => structuredClone(acc),
  };
}

/** The argument of a row that an aggregate's FILTER (WHERE ...) excludes. */
export const FILTERED_OUT = Symbol("filtered out");

/** An accumulator that ignores rows excluded by FILTER; retractions of them are ignored alike. */
export function filtered(inner: Accumulator): Accumulator {
  return {
    ...inner,
    add: (acc, v) => (v === FILTERED_OUT ? acc : inner.add(acc, v)),
    retract: inner.retract ? (acc, v) => (v === FILTERED_OUT ? acc : inner.retract!(acc, v)) : undefined,
  };
}

/** SQL order for min/max: text by code point (UTF-8 byte order), floats with NaN above every number. */
const order = (a: any, b: any): number =>
  typeof a === "string" && typeof b === "string" ? compareText(a, b)
  : typeof a === "number" && typeof b === "number" ? compareNumber(a, b)
  : a < b ? -1 : a > b ? 1 : 0;
const gt = (a: any, b: any) => order(a, b) > 0;
const lt = (a: any, b: any) => order(a, b) < 0;

/** The accumulator for a planned aggregate call; `updating` inputs need retraction. */
export function accumulatorFor(call: AggregateCall, registry: PluginRegistry | undefined, updating: boolean): Accumulator {
  const fn = call.fn.toLowerCase();
  if (call.distinct) {
    if (fn === "count") return countDistinct;
    const base = accumulatorFor({ ...call, distinct: false }, registry, false);
    return distinctOf(base);
  }
  switch (fn) {
    case "count":
      return call.star ? countStar : count;
    case "sum":
      return call.type.kind === "int" ? intSum : sum;
    case "avg":
      return avg;
    case "min":
      return updating ? retractableExtreme(lt) : extreme(lt);
    case "max":
      return updating ? retractableExtreme(gt) : extreme(gt);
  }
  const udaf = registry?.udaf(fn);
  if (!udaf) throw new Error(`unknown aggregate function '${call.fn}'`);
  return udafAccumulator(udaf);
}
