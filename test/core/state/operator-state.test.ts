/**
 * When a table's next checkpoint rewrites it whole (a rebase): once the delta
 * due would make most records in its files stale, or the chain is long; a table
 * that only grows keeps adding deltas.
 */
import { describe, expect, test } from "bun:test";
import { MAX_CHAIN, rebaseDue, type StateFileRef } from "../../../core/state/operator-state.ts";

const file = (checkpoint: number, full: boolean, puts: number, deletes = 0): StateFileRef => ({ path: `f${checkpoint}`, checkpoint, full, bytes: puts * 30, puts, deletes });

describe("rebase rule", () => {
  test("no file yet, or a chain at its longest: a full file", () => {
    expect(rebaseDue([], 0, 0)).toBe(true);
    const chain = [file(1, true, 100), ...Array.from({ length: MAX_CHAIN - 1 }, (_, i) => file(i + 2, false, 100))];
    expect(rebaseDue(chain, 100 * MAX_CHAIN, 100)).toBe(true);
    expect(rebaseDue(chain.slice(0, -1), 100 * MAX_CHAIN, 100)).toBe(false);
  });

  test("a table that only grows (each delta new keys) keeps adding deltas", () => {
    const chain = [file(1, true, 1_000_000)];
    for (let c = 2; c <= 10; c++) {
      expect(rebaseDue(chain, c * 1_000_000, 1_000_000)).toBe(false); // the c-th million of keys arrived
      chain.push(file(c, false, 1_000_000));
    }
  });

  test("a table whose deltas rewrite its keys rebases instead of the delta that would make stale records outnumber live ones", () => {
    // 1M keys, each delta rewriting 60% of them.
    const chain = [file(1, true, 1_000_000)];
    expect(rebaseDue(chain, 1_000_000, 600_000)).toBe(false); // 1.6M records for 1M entries
    chain.push(file(2, false, 600_000));
    expect(rebaseDue(chain, 1_000_000, 600_000)).toBe(true); // 2.2M: never written
    // Deltas rewriting every key: a full file, then one delta, then a full file again.
    expect(rebaseDue([file(1, true, 1_000_000)], 1_000_000, 1_000_000)).toBe(false);
    expect(rebaseDue([file(1, true, 1_000_000), file(2, false, 1_000_000)], 1_000_000, 1_000_000)).toBe(true);
  });

  test("deletions count as stale records too, in the files and in the delta due", () => {
    const chain = [file(1, true, 1_000_000), file(2, false, 0, 700_000)];
    expect(rebaseDue(chain, 300_000, 0)).toBe(true);
    // 1M keys, then 200k deleted and 400k changed: 1.6M records for 800k entries.
    expect(rebaseDue([file(1, true, 1_000_000)], 800_000, 600_000)).toBe(false);
    expect(rebaseDue([file(1, true, 1_000_000)], 800_000, 600_001)).toBe(true);
  });
});
