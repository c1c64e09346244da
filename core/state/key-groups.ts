/**
 * Keys hash into a fixed number of key groups (the job's max parallelism, as in
 * Flink); each subtask owns a contiguous range of them. Hash shuffles route by
 * the same mapping, so after a change of parallelism a subtask reads back only
 * the key groups it owns now, whole.
 */

/** Key groups of a job unless it says otherwise; the highest parallelism it can ever run at. */
export const DEFAULT_MAX_PARALLELISM = 128;

export function keyGroupOf(hash: number, maxParallelism: number): number {
  return (hash >>> 0) % maxParallelism;
}

/** The subtask that owns key group `kg` at `parallelism`. */
export function subtaskOfKeyGroup(kg: number, parallelism: number, maxParallelism: number): number {
  return Math.floor((kg * parallelism) / maxParallelism);
}

/** The key groups [lo, hi) subtask `index` owns at `parallelism`: exactly those subtaskOfKeyGroup maps to it. */
export function keyGroupRange(index: number, parallelism: number, maxParallelism: number): [number, number] {
  return [Math.ceil((index * maxParallelism) / parallelism), Math.ceil(((index + 1) * maxParallelism) / parallelism)];
}

/** The subtask a row with key hash `hash` goes to. */
export function subtaskOfHash(hash: number, parallelism: number, maxParallelism: number): number {
  return subtaskOfKeyGroup((hash >>> 0) % maxParallelism, parallelism, maxParallelism);
}
