/**
 * Time functions over TIMESTAMP values (µs since the epoch, UTC, no zone):
 * truncation, parts, and chrono's strftime language for to_char, the one
 * DataFusion's to_char speaks.
 */
import { civil, ExprError, fractionText, parseTimestamp } from "./values.ts";

const DAY = 86_400e6;

/** Units date_trunc accepts, with their fixed length in µs where they have one. */
const FIXED_UNITS: Record<string, number> = {
  microsecond: 1, microseconds: 1, us: 1,
  millisecond: 1e3, milliseconds: 1e3, ms: 1e3,
  second: 1e6, seconds: 1e6, s: 1e6,
  minute: 60e6, minutes: 60e6, m: 60e6,
  hour: 3600e6, hours: 3600e6, h: 3600e6,
  day: DAY, days: DAY, d: DAY,
};
const CALENDAR_UNITS = ["week", "weeks", "month", "months", "quarter", "quarters", "year", "years"];

export const TRUNC_UNITS = ["microsecond", "millisecond", "second", "minute", "hour", "day", "week", "month", "quarter", "year"];

export function checkTruncUnit(unit: string): void {
  const u = unit.toLowerCase();
  if (!(u in FIXED_UNITS) && !CALENDAR_UNITS.includes(u)) {
    throw new ExprError(`date_trunc: unknown unit '${unit}'; use one of ${TRUNC_UNITS.join(", ")}`);
  }
}

export function dateTrunc(unit: string, ts: number): number {
  const u = unit.toLowerCase();
  const fixed = FIXED_UNITS[u];
  if (fixed !== undefined) return Math.floor(ts / fixed) * fixed;
  const { date: d } = civil(ts);
  const y = d.getUTCFullYear();
  switch (u) {
    case "week":
    case "weeks": {
      const day = Math.floor(ts / DAY) * DAY;
      const dow = (d.getUTCDay() + 6) % 7; // Monday = 0
      return day - dow * DAY;
    }
    case "month":
    case "months":
      return utc(y, d.getUTCMonth(), 1);
    case "quarter":
    case "quarters":
      return utc(y, Math.floor(d.getUTCMonth() / 3) * 3, 1);
    case "year":
    case "years":
      return utc(y, 0, 1);
  }
  checkTruncUnit(unit);
  return ts;
}

/** µs at midnight UTC of a date; works for years before 100, which Date.UTC would shift. */
function utc(year: number, month: number, day: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month, day);
  return d.getTime() * 1000;
}

/** Parts date_part and EXTRACT accept; those marked fractional return DOUBLE. */
export const DATE_PARTS: Record<string, { fractional: boolean }> = {
  year: { fractional: false }, quarter: { fractional: false }, month: { fractional: false }, week: { fractional: false },
  day: { fractional: false }, dow: { fractional: false }, doy: { fractional: false }, hour: { fractional: false },
  minute: { fractional: false }, second: { fractional: true }, millisecond: { fractional: true },
  microsecond: { fractional: false }, nanosecond: { fractional: false }, epoch: { fractional: true },
  isodow: { fractional: false }, isoyear: { fractional: false },
};
const PART_ALIASES: Record<string, string> = {
  years: "year", qtr: "quarter", months: "month", weeks: "week", days: "day", hours: "hour", minutes: "minute",
  seconds: "second", milliseconds: "millisecond", microseconds: "microsecond", nanoseconds: "nanosecond",
};

/** The canonical name of a date part, or an error naming the valid ones. */
export function datePartName(part: string): string {
  const p = part.toLowerCase();
  const name = PART_ALIASES[p] ?? p;
  if (!(name in DATE_PARTS)) throw new ExprError(`unknown date part '${part}'; use one of ${Object.keys(DATE_PARTS).join(", ")}`);
  return name;
}

/** ISO 8601 week number and week-based year of a UTC date. */
function isoWeek(d: Date): { week: number; year: number } {
  const day = new Date(d.getTime());
  day.setUTCHours(0, 0, 0, 0);
  const dow = day.getUTCDay() || 7;
  day.setUTCDate(day.getUTCDate() + 4 - dow); // the Thursday of this week decides the year
  const year = day.getUTCFullYear();
  const start = new Date(0);
  start.setUTCFullYear(year, 0, 1);
  return { week: Math.ceil(((day.getTime() - start.getTime()) / 86_400_000 + 1) / 7), year };
}

function dayOfYear(d: Date): number {
  const start = new Date(0);
  start.setUTCFullYear(d.getUTCFullYear(), 0, 1);
  const day = new Date(0);
  day.setUTCFullYear(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return Math.round((day.getTime() - start.getTime()) / 86_400_000) + 1;
}

export function datePart(part: string, ts: number): number {
  const { date: d, micros } = civil(ts);
  switch (datePartName(part)) {
    case "year":
      return d.getUTCFullYear();
    case "quarter":
      return Math.floor(d.getUTCMonth() / 3) + 1;
    case "month":
      return d.getUTCMonth() + 1;
    case "week":
      return isoWeek(d).week;
    case "isoyear":
      return isoWeek(d).year;
    case "day":
      return d.getUTCDate();
    case "dow":
      return d.getUTCDay();
    case "isodow":
      return d.getUTCDay() || 7;
    case "doy":
      return dayOfYear(d);
    case "hour":
      return d.getUTCHours();
    case "minute":
      return d.getUTCMinutes();
    case "second":
      return d.getUTCSeconds() + micros / 1e6;
    case "millisecond":
      return d.getUTCSeconds() * 1000 + micros / 1000;
    case "microsecond":
      return d.getUTCSeconds() * 1e6 + micros;
    case "nanosecond":
      return (d.getUTCSeconds() * 1e6 + micros) * 1000;
    case "epoch":
      return ts / 1e6;
  }
  return NaN;
}

/** A timestamp from text, or from a number of `unitMicros` (seconds: 1e6). */
export function toTimestamp(v: unknown, unitMicros: number, name: string): number {
  if (typeof v === "number") return Math.trunc(v * unitMicros);
  const parsed = parseTimestamp(String(v));
  if (parsed === null) throw new ExprError(`${name}: cannot read '${String(v)}' as a timestamp; write it like 2024-01-01T00:00:00Z`);
  return parsed;
}

// ---------------------------------------------------------------- strftime

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

type Piece = string | { spec: string; pad: "" | "-" | "_" | "0" };

const SPECS = new Set("YCyqmbhBdeaAwuUWGgVjDxFvHkIlPpMSfRTXrcstn%".split(""));
const ZONE_SPECS = ["%Z", "%z", "%:z", "%::z", "%:::z", "%#z", "%+"];

const formatCache = new Map<string, Piece[]>();

/**
 * Parses a chrono strftime format once. Zone specifiers (%z, %Z, %+) have
 * nothing to print for a TIMESTAMP without zone: DataFusion fails on them at
 * run time, Runnel refuses them here.
 */
export function compileFormat(format: string): Piece[] {
  const cached = formatCache.get(format);
  if (cached) return cached;
  const pieces: Piece[] = [];
  let i = 0;
  let text = "";
  while (i < format.length) {
    const c = format[i]!;
    if (c !== "%") {
      text += c;
      i++;
      continue;
    }
    const zone = ZONE_SPECS.find((z) => format.startsWith(z, i));
    if (zone) throw new ExprError(`to_char: ${zone} needs a time zone, and a TIMESTAMP has none; remove it (times are UTC)`);
    let j = i + 1;
    let pad: "" | "-" | "_" | "0" = "";
    if (format[j] === "-" || format[j] === "_" || format[j] === "0") pad = format[j++] as "-" | "_" | "0";
    let spec = format[j];
    if (spec === "." && /^\.[369]?f/.test(format.slice(j))) {
      spec = format[j + 1] === "f" ? ".f" : format.slice(j, j + 3);
      j += spec.length;
    } else if (spec !== undefined && /[369]/.test(spec) && format[j + 1] === "f") {
      spec = format.slice(j, j + 2);
      j += 2;
    } else if (spec !== undefined && SPECS.has(spec)) {
      j++;
    } else {
      throw new ExprError(`to_char: unknown format specifier '${format.slice(i, j + 1)}'; use chrono strftime specifiers such as %Y-%m-%d %H:%M:%S`);
    }
    if (text) pieces.push(text);
    text = "";
    pieces.push({ spec, pad });
    i = j;
  }
  if (text) pieces.push(text);
  if (formatCache.size > 1000) formatCache.clear();
  formatCache.set(format, pieces);
  return pieces;
}

/** "00" to "99": the common two-digit zero-padded field without String() and padStart() (q16 formats every bid's time). */
const TWO_DIGITS = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, "0"));

function num(n: number, width: number, pad: "" | "-" | "_" | "0", natural: " " | "0"): string {
  if (width === 2 && (n | 0) === n && n >= 0 && n < 100 && (pad === "0" || (pad === "" && natural === "0"))) return TWO_DIGITS[n]!;
  const fill = pad === "-" ? "" : pad === "_" ? " " : pad === "0" ? "0" : natural;
  const s = String(Math.abs(n));
  return (n < 0 ? "-" : "") + (fill ? s.padStart(width, fill) : s);
}

/** Specifiers that print below the second: the only ones that change between rows of the same second. */
const SUB_SECOND = new Set(["f", ".f", ".3f", ".6f", ".9f", "3f", "6f", "9f"]);

/** Specifiers that print milliseconds at the finest: their text is the same for every µs of a millisecond. */
const MILLISECOND = new Set([".3f", "3f"]);

interface SecondMemo {
  second: number;
  /** The pieces as printed in this second (null: below the second). */
  parts: (string | null)[];
  /** µs the format's finest piece spans (a second, a millisecond or a µs): timestamps in the same unit print the same text. */
  unit: number;
  /** The last text printed, and the timestamp's unit it was printed for. */
  unitIndex: number;
  text: string;
}

/** Per format text, the last whole second it printed (one lookup by the text, before any parsing, for a repeat). */
const lastSecond = new Map<string, SecondMemo>();

/**
 * Formats a µs timestamp (UTC) with a chrono strftime format. Rows of a stream
 * come mostly in time order, many in one second: the pieces at or above the
 * second are reused from the last call in the same second (to_char was 15% of
 * q10's CPU, two calls a row), and the whole text from the last call in the
 * same unit of the format's finest piece (q10's '%H:%M:%S%.3f' prints the same
 * text for the thousand bids of a millisecond; the same string, already flat,
 * also makes the substr and the partition comparison after it cheap).
 */
export function strftime(ts: number, format: string): string {
  let memo = lastSecond.get(format);
  // A unit divides a second: the same unit index is the same second too.
  if (memo !== undefined && Math.floor(ts / memo.unit) === memo.unitIndex) return memo.text;
  const pieces = compileFormat(format);
  const second = Math.floor(ts / 1e6);
  if (memo === undefined || memo.second !== second) {
    const { date } = civil(ts);
    const parts = pieces.map((p) => (typeof p === "string" ? p : SUB_SECOND.has(p.spec) ? null : printPiece(p, ts, date, 0)));
    const below = pieces.filter((p): p is Exclude<Piece, string> => typeof p !== "string" && SUB_SECOND.has(p.spec));
    const unit = below.length === 0 ? 1e6 : below.every((p) => MILLISECOND.has(p.spec)) ? 1000 : 1;
    memo = { second, parts, unit, unitIndex: Number.NaN, text: "" };
    if (lastSecond.size > 1000) lastSecond.clear();
    lastSecond.set(format, memo);
  }
  const unitIndex = Math.floor(ts / memo.unit);
  if (unitIndex === memo.unitIndex) return memo.text;
  const parts = memo.parts;
  const micros = ts - second * 1e6;
  let out = "";
  for (let i = 0; i < parts.length; i++) {
    const text = parts[i];
    out += text !== null ? text! : printPiece(pieces[i] as Exclude<Piece, string>, ts, null, micros);
  }
  memo.unitIndex = unitIndex;
  memo.text = out;
  return out;
}

/** One specifier of a format; `d` is the timestamp's second as a Date (unused below the second, where `micros` is read). */
function printPiece(p: Exclude<Piece, string>, ts: number, d: Date | null, micros: number): string {
  const pad = p.pad;
  switch (p.spec) {
    case "f":
      return String(micros * 1000).padStart(9, "0");
    case ".f":
      return fractionText(micros);
    case ".3f":
    case ".6f":
    case ".9f":
    case "3f":
    case "6f":
    case "9f": {
      const width = Number(p.spec[p.spec.length - 2]);
      const digits = String(micros * 1000).padStart(9, "0").slice(0, width);
      return (p.spec.startsWith(".") ? "." : "") + digits;
    }
  }
  let out = "";
  {
    if (d === null) d = civil(ts).date;
    const year = d.getUTCFullYear();
    const hour = d.getUTCHours();
    switch (p.spec) {
      case "Y":
        out += year >= 0 && year <= 9999 ? num(year, 4, pad, "0") : (year < 0 ? "-" : "+") + String(Math.abs(year)).padStart(4, "0");
        break;
      case "C":
        out += num(Math.floor(year / 100), 2, pad, "0");
        break;
      case "y":
        out += num(((year % 100) + 100) % 100, 2, pad, "0");
        break;
      case "q":
        out += String(Math.floor(d.getUTCMonth() / 3) + 1);
        break;
      case "m":
        out += num(d.getUTCMonth() + 1, 2, pad, "0");
        break;
      case "b":
      case "h":
        out += MONTHS[d.getUTCMonth()]!.slice(0, 3);
        break;
      case "B":
        out += MONTHS[d.getUTCMonth()]!;
        break;
      case "d":
        out += num(d.getUTCDate(), 2, pad, "0");
        break;
      case "e":
        out += num(d.getUTCDate(), 2, pad, " ");
        break;
      case "a":
        out += DAYS[d.getUTCDay()]!.slice(0, 3);
        break;
      case "A":
        out += DAYS[d.getUTCDay()]!;
        break;
      case "w":
        out += String(d.getUTCDay());
        break;
      case "u":
        out += String(d.getUTCDay() || 7);
        break;
      case "U":
      case "W": {
        // Weeks starting on Sunday (%U) or Monday (%W); days before the first such day are week 0.
        const doy = dayOfYear(d) - 1;
        const wday = p.spec === "U" ? d.getUTCDay() : (d.getUTCDay() + 6) % 7;
        out += num(Math.floor((doy + 7 - wday) / 7), 2, pad, "0");
        break;
      }
      case "G":
        out += num(isoWeek(d).year, 4, pad, "0");
        break;
      case "g":
        out += num(((isoWeek(d).year % 100) + 100) % 100, 2, pad, "0");
        break;
      case "V":
        out += num(isoWeek(d).week, 2, pad, "0");
        break;
      case "j":
        out += num(dayOfYear(d), 3, pad, "0");
        break;
      case "D":
      case "x":
        out += strftime(ts, "%m/%d/%y");
        break;
      case "F":
        out += strftime(ts, "%Y-%m-%d");
        break;
      case "v":
        out += strftime(ts, "%e-%b-%Y");
        break;
      case "H":
        out += num(hour, 2, pad, "0");
        break;
      case "k":
        out += num(hour, 2, pad, " ");
        break;
      case "I":
        out += num(hour % 12 || 12, 2, pad, "0");
        break;
      case "l":
        out += num(hour % 12 || 12, 2, pad, " ");
        break;
      case "P":
        out += hour < 12 ? "am" : "pm";
        break;
      case "p":
        out += hour < 12 ? "AM" : "PM";
        break;
      case "M":
        out += num(d.getUTCMinutes(), 2, pad, "0");
        break;
      case "S":
        out += num(d.getUTCSeconds(), 2, pad, "0");
        break;
      case "R":
        out += strftime(ts, "%H:%M");
        break;
      case "T":
      case "X":
        out += strftime(ts, "%H:%M:%S");
        break;
      case "r":
        out += strftime(ts, "%I:%M:%S %p");
        break;
      case "c":
        out += strftime(ts, "%a %b %e %H:%M:%S %Y");
        break;
      case "s":
        out += String(Math.floor(ts / 1e6));
        break;
      case "t":
        out += "\t";
        break;
      case "n":
        out += "\n";
        break;
      case "%":
        out += "%";
        break;
    }
  }
  return out;
}

