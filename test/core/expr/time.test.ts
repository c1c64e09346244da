/**
 * strftime reuses what it printed for the last second a format saw (rows of a
 * stream share their second): a run of timestamps in time order, across
 * seconds, back in time and before 1970, prints what Date's own ISO text says.
 */
import { describe, expect, test } from "bun:test";
import { strftime } from "../../../core/expr/time.ts";

/** Independent of strftime: Date's ISO text for the second, the microseconds from the number. */
function expected(ts: number): string {
  const second = Math.floor(ts / 1e6);
  const iso = new Date(second * 1000).toISOString(); // yyyy-mm-ddThh:mm:ss.000Z
  const micros = String(ts - second * 1e6).padStart(6, "0");
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${micros} ${micros.slice(0, 3)}`;
}

describe("strftime across a stream of timestamps", () => {
  test("every row prints its own second and fraction, whatever the last call printed", () => {
    const T = 1_710_510_330_000_000;
    const times: number[] = [];
    for (let i = 0; i < 3000; i++) times.push(T + i * 997); // many rows a second, crossing seconds
    times.push(T + 5_000_000, T, T - 1, T - 1_000_001, -1, -1_000_000, -1_500_000, 0, 999_999, 1_000_000);
    for (let i = 0; i < 200; i++) times.push(T + ((i * 7919) % 50) * 400_000); // back and forth
    for (const ts of times) expect(strftime(ts, "%Y-%m-%d %H:%M:%S%.6f %3f")).toBe(expected(ts));
  });

  test("a millisecond format (q10's '%H:%M:%S%.3f') repeats its text only within a millisecond, between calls of other formats", () => {
    const T = 1_710_510_330_000_000;
    const times: number[] = [];
    for (let i = 0; i < 3000; i++) times.push(T + i * 7); // many rows a millisecond, crossing milliseconds and seconds
    times.push(T + 999, T + 1000, T + 999, T - 1, T - 1000, T - 1001, -1, -1000, -1001, 0, 999, 1000);
    for (const ts of times) {
      const iso = expected(ts);
      expect(strftime(ts, "%H:%M:%S%.3f")).toBe(`${iso.slice(11, 19)}.${iso.slice(-3)}`);
      expect(strftime(ts, "%Y-%m-%d")).toBe(iso.slice(0, 10));
      expect(strftime(ts, "%S%.6f")).toBe(iso.slice(17, 26));
    }
  });

  test("a format without sub-second pieces changes only with its second", () => {
    const T = 1_710_510_330_000_000;
    expect(strftime(T + 999_999, "%H:%M:%S")).toBe("13:45:30");
    expect(strftime(T + 1_000_000, "%H:%M:%S")).toBe("13:45:31");
    expect(strftime(T - 1, "%H:%M:%S")).toBe("13:45:29");
    expect(strftime(T, "%s %f")).toBe("1710510330 000000000");
    expect(strftime(T + 123_456, "%s %f")).toBe("1710510330 123456000");
  });
});
