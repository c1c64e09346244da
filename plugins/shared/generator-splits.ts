/**
 * Splits of the generator sources (impulse, nexmark), whose events are computed
 * rather than read. The set of splits is fixed when a job first starts — one per
 * subtask of that run — and recorded in every split's state, so a restore at
 * another parallelism resumes each generator at its own position instead of
 * re-deriving a share of the sequence from the new subtask count (which loses
 * or repeats events). Split k goes to subtask k mod parallelism; a subtask may
 * read several splits, or none.
 */

/** What every generator split's state carries besides its own position. */
export interface GeneratorSplitState {
  /** Version of the state layout; absent in states written before splits were fixed. */
  v?: 1;
  /** How many splits the job's generator has (fixed at its first start). */
  splits?: number;
}

export const GENERATOR_SPLIT_STATE_VERSION = 1;

export interface OwnedSplit<S> {
  id: string;
  /** k in 0..count-1: which share of the generator this split produces. */
  index: number;
  /** Its restored position, undefined on a fresh start. */
  state: S | undefined;
}

export interface GeneratorSplits<S> {
  /** Number of splits of the whole generator. */
  count: number;
  /** The splits this subtask reads, by ascending index. */
  owned: OwnedSplit<S>[];
  /** Any restored state (for values shared by all splits, like a base time). */
  any: S | undefined;
}

/**
 * Works out the generator's splits from the restored positions of every
 * subtask (`prefix-<k>` keys) and picks this subtask's. Without restored
 * positions the job is starting fresh: one split per subtask.
 */
export function assignGeneratorSplits<S extends GeneratorSplitState>(
  prefix: string,
  restored: Record<string, unknown>,
  subtaskIndex: number,
  parallelism: number,
): GeneratorSplits<S> {
  const states = new Map<number, S>();
  const pattern = new RegExp(`^${prefix}-(\\d+)$`);
  let recorded: number | undefined;
  for (const [key, value] of Object.entries(restored)) {
    const m = pattern.exec(key);
    if (!m || value === null || typeof value !== "object") continue;
    const state = value as S;
    states.set(Number(m[1]), state);
    if (typeof state.splits === "number") recorded = Math.max(recorded ?? 0, state.splits);
  }
  // States from before the count was recorded hold one entry per split.
  const count = states.size === 0 ? parallelism : (recorded ?? Math.max(...states.keys()) + 1);
  if (states.size > 0) {
    const missing: number[] = [];
    for (let k = 0; k < count; k++) if (!states.has(k)) missing.push(k);
    if (missing.length > 0) {
      // Starting a missing split from its beginning would repeat its events.
      throw new Error(
        `the checkpoint holds positions for ${states.size} of the ${count} ${prefix} splits (missing ${missing
          .map((k) => `${prefix}-${k}`)
          .join(", ")}); restart the job without its state to generate from the start`,
      );
    }
  }
  const owned: OwnedSplit<S>[] = [];
  for (let k = subtaskIndex; k < count; k += parallelism) owned.push({ id: `${prefix}-${k}`, index: k, state: states.get(k) });
  return { count, owned, any: states.values().next().value };
}

/**
 * Shares `n` events between the `active` splits as evenly as possible, so
 * their event times advance together; a split that has fewer left leaves the
 * rest of its share to the others. Generates one batch per split that gets any.
 */
export function shareOut<S, B>(n: number, active: S[], left: (split: S) => number, generate: (split: S, count: number) => B): B[] {
  if (active.length === 1) return [generate(active[0]!, n)];
  const counts: number[] = new Array(active.length).fill(0);
  const even = Math.floor(n / active.length);
  let rest = n;
  for (let i = 0; i < active.length; i++) {
    const share = i < n - even * active.length ? even + 1 : even;
    counts[i] = Math.min(share, left(active[i]!), rest);
    rest -= counts[i]!;
  }
  for (let i = 0; i < active.length && rest > 0; i++) {
    const more = Math.min(left(active[i]!) - counts[i]!, rest);
    counts[i]! += more;
    rest -= more;
  }
  const batches: B[] = [];
  for (let i = 0; i < active.length; i++) if (counts[i]! > 0) batches.push(generate(active[i]!, counts[i]!));
  return batches;
}
