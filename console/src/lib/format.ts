/** Numbers and times as people read them. API times are microseconds. */
const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });
const whole = new Intl.NumberFormat("en");

export const fmtCount = (n: number | null | undefined) => (n === null || n === undefined ? "—" : n < 10_000 ? whole.format(Math.round(n)) : compact.format(n));
export const fmtRate = (perSecond: number | null | undefined) => (perSecond === null || perSecond === undefined ? "—" : `${fmtCount(perSecond)}/s`);

export function fmtDurationMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}
export const fmtMicros = (micros: number | null | undefined) => (micros === null || micros === undefined ? "—" : fmtDurationMs(micros / 1000));

export function fmtBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** A wall-clock or event time (µs since the epoch) as local date and time. */
export function fmtTime(micros: number | null | undefined): string {
  if (micros === null || micros === undefined) return "—";
  const d = new Date(micros / 1000);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}
