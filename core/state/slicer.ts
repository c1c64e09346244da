/**
 * Lets processing go on between slices of background work: yields to the event
 * loop once a slice's budget has run since the last yield, so small snapshots
 * finish at once and large ones never hold processing up for long. The budget
 * grows with the time processing took between slices (a share of it, up to a
 * cap): where batches are slow (a disk table writing back), a few milliseconds
 * per turn would leave background work starved, and a snapshot's database read
 * open for minutes.
 */
export class Slicer {
  private since = performance.now();
  private budgetMs: number;
  /**
   * `share`: the part of the time background work gets while processing keeps
   * its turns long (a third by default); `minMs`/`maxMs` bound a slice.
   */
  constructor(
    private readonly minMs = 4,
    private readonly maxMs = 50,
    private readonly share = 1 / 3,
  ) {
    this.budgetMs = minMs;
  }
  async maybeYield(): Promise<void> {
    if (performance.now() - this.since < this.budgetMs) return;
    const left = performance.now();
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.since = performance.now();
    this.budgetMs = sliceBudget(this.since - left, this.share, this.minMs, this.maxMs);
  }
}

/** The next slice's length after processing took `processingMs`: background work gets `share` of the time, within [minMs, maxMs]. */
export function sliceBudget(processingMs: number, share: number, minMs: number, maxMs: number): number {
  return Math.min(maxMs, Math.max(minMs, (processingMs * share) / (1 - share)));
}
