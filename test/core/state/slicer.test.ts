/** How long background work runs between processing's turns (core/state/slicer.ts). */
import { expect, test } from "bun:test";
import { sliceBudget } from "../../../core/state/slicer.ts";

test("background work gets its share of the time, within the slice bounds", () => {
  // The default: a third of the time, so a slice half as long as processing's turn.
  expect(sliceBudget(20, 1 / 3, 4, 50)).toBeCloseTo(10);
  // A disk table's full-snapshot scan: four fifths, so four times processing's turn.
  expect(sliceBudget(20, 0.8, 20, 500)).toBeCloseTo(80);
  // Short turns still leave the minimum, long ones no more than the maximum.
  expect(sliceBudget(0.5, 0.8, 20, 500)).toBe(20);
  expect(sliceBudget(1000, 0.8, 20, 500)).toBe(500);
});
