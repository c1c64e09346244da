/**
 * Fencing: every run of a job claims an epoch in its checkpoint store, greater
 * than any before. A run writes a manifest, commits its sinks and deletes old
 * state files only while the store's epoch is still its own, so a run that was
 * paused, partitioned or replaced (a control plane that lost its lease, a
 * stopped worker that wakes up) cannot overwrite a newer run's checkpoint or
 * commit output twice.
 *
 * The store also remembers which checkpoint each epoch restored from: a
 * manifest an older run managed to write after a newer run had already
 * restored (it passed its check just before the takeover) names a checkpoint
 * the newer run never saw, and is ignored from then on.
 *
 * What this cannot close: a run that passes its check and is then paused
 * before the write itself. Object stores without compare-and-swap and local
 * folders give no atomic check-and-write, so the window is that of one write
 * (milliseconds), not that of the pause.
 */
import type { CheckpointStore } from "./store.ts";

export const FENCE_FILE = "epoch.json";
/** How many runs' restore points are remembered (older manifests are long pruned). */
const HISTORY = 50;

export interface FenceRecord {
  /** The current run's epoch. */
  epoch: number;
  /** Per run, oldest first: the checkpoint it restored from (0: none; null: still deciding). */
  history: { epoch: number; restoredFrom: number | null }[];
}

/** This run was superseded by a newer one: it must stop without writing anything more. */
export class FencedError extends Error {}

export async function readFence(store: CheckpointStore): Promise<FenceRecord | undefined> {
  const bytes = await store.readFile(FENCE_FILE);
  if (!bytes) return undefined;
  try {
    const record = JSON.parse(new TextDecoder().decode(bytes)) as FenceRecord;
    return typeof record.epoch === "number" && Array.isArray(record.history) ? record : undefined;
  } catch {
    return undefined;
  }
}

/** A manifest of run `epoch` with id `checkpointId` that a later run's restore point rules out. */
export function superseded(record: FenceRecord | undefined, epoch: number, checkpointId: number): boolean {
  if (!record) return false;
  return record.history.some((h) => h.epoch > epoch && h.restoredFrom !== null && checkpointId > h.restoredFrom);
}

export class Fence {
  private constructor(
    private readonly store: CheckpointStore,
    readonly epoch: number,
  ) {}

  /** Claims a new epoch for a run that is about to restore (later runs of the job fence this one out). */
  static async claim(store: CheckpointStore): Promise<Fence> {
    const record = await readFence(store);
    // Time-based so epochs also order runs of different processes; +1 keeps them increasing on a clock that went back.
    const epoch = Math.max(Date.now() * 1000, (record?.epoch ?? 0) + 1);
    const history = [...(record?.history ?? []).slice(1 - HISTORY), { epoch, restoredFrom: null }];
    await write(store, { epoch, history });
    return new Fence(store, epoch);
  }

  /** The view of an epoch claimed elsewhere (a worker checks the job manager's epoch before it commits). */
  static of(store: CheckpointStore, epoch: number): Fence {
    return new Fence(store, epoch);
  }

  /** Records the checkpoint this run restores from (null: none), once it is chosen. */
  async restoring(checkpointId: number | null): Promise<void> {
    const record = await this.current("restoring");
    const history = record.history.map((h) => (h.epoch === this.epoch ? { ...h, restoredFrom: checkpointId ?? 0 } : h));
    await write(this.store, { epoch: this.epoch, history });
  }

  /** Fails with FencedError unless this run's epoch is still the store's. */
  async check(what: string): Promise<void> {
    await this.current(what);
  }

  /**
   * Checks every `intervalMs` and calls `onFenced` once when a newer run took over, so a run woken from a
   * pause stops within that time even between checkpoints (its uncommitted output is then never published).
   */
  watch(intervalMs: number, onFenced: (err: FencedError) => void): () => void {
    let checking = false;
    const timer = setInterval(async () => {
      if (checking) return;
      checking = true;
      try {
        await this.check("going on");
      } catch (err) {
        if (err instanceof FencedError) {
          clearInterval(timer);
          onFenced(err);
        }
        // Other failures (the store unreachable for a moment) are for the next checkpoint to report.
      } finally {
        checking = false;
      }
    }, intervalMs);
    return () => clearInterval(timer);
  }

  private async current(what: string): Promise<FenceRecord> {
    const record = await readFence(this.store);
    if (record?.epoch !== this.epoch) {
      throw new FencedError(
        `${what} refused: a newer run of this job (${record ? `epoch ${record.epoch}` : "one that cleared the state"}) took over its state in ${this.store.location}, ` +
          `so this run (epoch ${this.epoch}) stops without writing more. Nothing to do: the newer run goes on from its checkpoint`,
      );
    }
    return record;
  }
}

async function write(store: CheckpointStore, record: FenceRecord): Promise<void> {
  await store.putFile(FENCE_FILE, new TextEncoder().encode(JSON.stringify(record)));
}
