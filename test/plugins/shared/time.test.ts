/** RFC 3339 reading: the digit-by-digit path for '...Z' agrees with the general one, and impossible dates stay refused. */
import { expect, test } from "bun:test";
import { parseTimestampText } from "../../../plugins/shared/time.ts";

test("'…Z' (fast path) and '…+00:00' (general path) give the same µs for random instants", () => {
  let seed = 42;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let i = 0; i < 20_000; i++) {
    const ms = Math.floor(next() * 4e12) - 1e12;
    const iso = new Date(ms).toISOString(); // 2024-03-15T13:45:30.250Z
    const micros = String(Math.floor(next() * 1000)).padStart(3, "0");
    for (const z of [iso, iso.replace("Z", `${micros}Z`), iso.replace(/\.\d+Z$/, "Z")]) {
      const general = parseTimestampText(z.replace(/Z$/, "+00:00"));
      expect(parseTimestampText(z)).toBe(general);
      expect(general).not.toBeNull();
    }
    expect(parseTimestampText(iso)).toBe(ms * 1000);
  }
});

test("impossible dates and times are refused on the fast path too", () => {
  for (const bad of ["2023-02-29T01:00:00Z", "2024-02-30T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01T24:00:00Z", "2024-01-01T12:61:00Z", "2024-01-01T12:00:00.Z"]) {
    expect(parseTimestampText(bad)).toBeNull();
  }
  expect(parseTimestampText("2024-02-29T23:59:59.9999999Z")).toBe(Date.UTC(2024, 1, 29, 23, 59, 59) * 1000 + 999_999);
  expect(parseTimestampText("2024-01-01 12:00:00,5z")).toBe(Date.UTC(2024, 0, 1, 12) * 1000 + 500_000);
});
