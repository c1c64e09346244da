/**
 * A set of non-negative integers kept as sorted, disjoint [start, end] ranges:
 * the stream sequence numbers a source has taken into Runnel's state but whose
 * acknowledgement the broker may not have applied. Sequences mostly arrive in
 * order, so the set stays a handful of ranges however many numbers it holds.
 * JSON form (for checkpoints): [start1, end1, start2, end2, ...].
 */
export class RangeSet {
  /** Flat [start, end, start, end...], sorted, disjoint and not adjacent. */
  private r: number[] = [];

  static fromJSON(data: unknown): RangeSet {
    const s = new RangeSet();
    if (!Array.isArray(data)) return s;
    for (let i = 0; i + 1 < data.length; i += 2) s.addRange(Number(data[i]), Number(data[i + 1]));
    return s;
  }

  toJSON(): number[] {
    return this.r.slice();
  }

  get rangeCount(): number {
    return this.r.length / 2;
  }

  /** The index of the range holding n, or -(insertion point) - 1. */
  private find(n: number): number {
    let lo = 0;
    let hi = this.r.length / 2 - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (n < this.r[mid * 2]!) hi = mid - 1;
      else if (n > this.r[mid * 2 + 1]!) lo = mid + 1;
      else return mid;
    }
    return -lo - 1;
  }

  has(n: number): boolean {
    // The common question is about the newest numbers: check the last range first.
    const len = this.r.length;
    if (len === 0 || n > this.r[len - 1]!) return false;
    if (n >= this.r[len - 2]!) return true;
    return this.find(n) >= 0;
  }

  add(n: number): void {
    this.addRange(n, n);
  }

  addRange(start: number, end: number): void {
    if (end < start) return;
    const r = this.r;
    const len = r.length;
    // Fast path: at or after the end.
    if (len === 0 || start > r[len - 1]! + 1) {
      r.push(start, end);
      return;
    }
    if (start >= r[len - 2]!) {
      if (end > r[len - 1]!) r[len - 1] = end;
      return;
    }
    // General case: merge every range overlapping or adjacent to [start, end].
    const out: number[] = [];
    let placed = false;
    for (let i = 0; i < len; i += 2) {
      const s = r[i]!;
      const e = r[i + 1]!;
      if (e + 1 < start) out.push(s, e);
      else if (end + 1 < s) {
        if (!placed) out.push(start, end), (placed = true);
        out.push(s, e);
      } else {
        start = Math.min(start, s);
        end = Math.max(end, e);
      }
    }
    if (!placed) out.push(start, end);
    this.r = out;
  }

  union(other: RangeSet): void {
    for (let i = 0; i < other.r.length; i += 2) this.addRange(other.r[i]!, other.r[i + 1]!);
  }

  /** Drops every number below `floor`. */
  dropBelow(floor: number): void {
    const r = this.r;
    let i = 0;
    while (i < r.length && r[i + 1]! < floor) i += 2;
    if (i > 0) r.splice(0, i);
    if (r.length > 0 && r[0]! < floor) r[0] = floor;
  }
}
