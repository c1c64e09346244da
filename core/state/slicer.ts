/**
 * Lets processing go on between slices of background work: yields to the event
 * loop once `budgetMs` of work has run since the last yield, so small snapshots
 * finish at once and large ones never hold processing up for long.
 */
export class Slicer {
  private since = performance.now();
  constructor(private readonly budgetMs = 4) {}
  async maybeYield(): Promise<void> {
    if (performance.now() - this.since < this.budgetMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.since = performance.now();
  }
}
