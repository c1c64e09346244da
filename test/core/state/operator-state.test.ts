/**
 * When a table's next checkpoint rewrites it whole (a rebase): once most
 * records in its files are stale, or the chain is long; a table that only
 * grows keeps adding deltas.
 */
import { describe, expect, test } from "bun:test";
import { MAX_CHAIN, rebaseDue, type StateFileRef } from "../../../core/state/operator-state.ts";

const file = (checkpoint: number, full: boolean, puts: number, deletes = 0): StateFileRef => ({ path: `f${checkpoint}`, checkpoint, full, bytes: puts * 30, puts, deletes });

describe("rebase rule", () => {
  test("no file yet, or a chain at its longest: a full file", () => {
    expect(rebaseDue([], 0)).toBe(true);
    const chain = [file(1, true, 100), ...Array.from({ length: MAX_CHAIN - 1 }, (_, i) => file(i + 2, false, 100))];
    expect(rebaseDue(chain, 100 * MAX_CHAIN)).toBe(true);
    expect(rebaseDue(chain.slice(0, -1), 100 * MAX_CHAIN)).toBe(false);
  });

  test("a table that only grows (each delta new keys) keeps adding deltas", () => {
    const chain = [file(1, true, 1_000_000)];
    for (let c = 2; c <= 10; c++) {
      expect(rebaseDue(chain, c * 1_000_000)).toBe(false); // the c-th million of keys arrived
      chain.push(file(c, false, 1_000_000));
    }
  });

  test("a table whose deltas rewrite its keys rebases once the stale records outnumber the live ones", () => {
    // 1M keys, each delta rewriting 60% of them.
    const chain = [file(1, true, 1_000_000)];
    expect(rebaseDue(chain, 1_000_000)).toBe(false);
    chain.push(file(2, false, 600_000));
    expect(rebaseDue(chain, 1_000_000)).toBe(false); // 1.6M records for 1M entries
    chain.push(file(3, false, 600_000));
    expect(rebaseDue(chain, 1_000_000)).toBe(true); // 2.2M
  });

  test("deletions count as stale records too", () => {
    const chain = [file(1, true, 1_000_000), file(2, false, 0, 700_000)];
    expect(rebaseDue(chain, 300_000)).toBe(true);
  });
});
