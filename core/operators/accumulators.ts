/**
 * Accumulators for planned aggregate calls: the built-in library
 * (core/expr/aggregates.ts), DISTINCT, FILTER and UDAFs.
 */
import type { UdafDefinition } from "../plugin-api/index.ts";
import type { AggregateCall } from "../plan/logical.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { AGGREGATE_FUNCTIONS, CORE_AGGREGATES, coreAccumulator, countDistinct, distinctOf, type Accumulator } from "../expr/aggregates.ts";
import { argInfos } from "../expr/functions.ts";

export type { Accumulator } from "../expr/aggregates.ts";

/**
 * A fresh value of each accumulator (a loop, not Array.map: it runs for every
 * new group), in an array with `extra` more slots after them for the caller.
 */
export function initValues(accumulators: readonly Accumulator[], extra = 0): any[] {
  const values = new Array(accumulators.length + extra);
  for (let j = 0; j < accumulators.length; j++) values[j] = accumulators[j]!.init();
  return values;
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

/** How many values a call reads per row (its value arguments and ORDER BY keys); more than one arrive as an array. */
export function valuesPerRow(call: AggregateCall, registry: PluginRegistry | undefined): { args: number; packed: boolean } {
  const fn = call.fn.toLowerCase();
  if (call.star) return { args: 0, packed: false };
  const def = AGGREGATE_FUNCTIONS.get(fn);
  const args = def ? Math.min(def.values ?? call.args.length, call.args.length) : call.args.length;
  const isUdaf = !CORE_AGGREGATES.has(fn) && !def && !!registry?.udaf(fn);
  return { args, packed: isUdaf || args + (call.orderBy?.length ?? 0) > 1 };
}

/** The accumulator for a planned aggregate call; `updating` inputs need retraction. */
export function accumulatorFor(call: AggregateCall, registry: PluginRegistry | undefined, updating: boolean): Accumulator {
  const fn = call.fn.toLowerCase();
  if (call.distinct) {
    if (fn === "count") return countDistinct;
    return distinctOf(accumulatorFor({ ...call, distinct: false }, registry, false));
  }
  if (CORE_AGGREGATES.has(fn)) return coreAccumulator(fn, call.star, call.type, updating);
  const def = AGGREGATE_FUNCTIONS.get(fn);
  if (def) return def.accumulator(argInfos(call.args), (call.orderBy ?? []).map((o) => ({ desc: o.desc, nullsFirst: o.nullsFirst })));
  const udaf = registry?.udaf(fn);
  if (!udaf) throw new Error(`unknown aggregate function '${call.fn}'`);
  return udafAccumulator(udaf);
}
