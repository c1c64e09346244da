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
  constructor(
    private readonly minMs = 4,
    private readonly maxMs = 50,
  ) {
    this.budgetMs = minMs;
  }
  async maybeYield(): Promise<void> {
    if (performance.now() - this.since < this.budgetMs) return;
    const left = performance.now();
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.since = performance.now();
    // A third of the time, as long as processing keeps its turns long: half of what it took.
    this.budgetMs = Math.min(this.maxMs, Math.max(this.minMs, (this.since - left) / 2));
  }
}
