/**
 * Timestamp text shared by the built-in plugins: RFC 3339 in and out, at
 * microsecond precision (Runnel's TIMESTAMP is µs since the Unix epoch, UTC).
 */

const RFC3339 =
  /^([+-]?\d{4,6})-(\d{1,2})-(\d{1,2})(?:[Tt ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*(?:([Zz])|([+-])(\d{2}):?(\d{2})?)?)?$/;

const FRACTION_SCALE = [0, 100000, 10000, 1000, 100, 10, 1];

/**
 * Parses an RFC 3339 / ISO 8601 timestamp ('2024-01-01T12:00:00.123456Z',
 * '2024-01-01 12:00:00+02:00', '2024-01-01') into µs since the epoch, or
 * returns null when the text is not one. Without a zone the time is UTC.
 * Digits beyond microseconds are truncated.
 */
export function parseTimestampText(text: string): number | null {
  const fast = parseCanonicalUtc(text);
  if (fast !== undefined) return fast;
  return parseTimestampSlow(text);
}

// The form nearly every producer writes ('2024-01-01T12:00:00.123Z') is read
// digit by digit, with the day's start cached: the regex and Date arithmetic
// were a tenth of a Kafka JSON pipeline's time.
let cachedDate = "";
let cachedDayMs = 0;

/** Two digits at i as a number, or a negative number when either is not a digit. */
const twoDigits = (text: string, i: number) => {
  const a = text.charCodeAt(i) - 48;
  const b = text.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
};

/** µs for 'YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z', null for an impossible value, undefined for another shape (the slow path decides). */
function parseCanonicalUtc(text: string): number | null | undefined {
  const n = text.length;
  if (n < 20 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) return undefined;
  const t = text.charCodeAt(10);
  if (t !== 84 && t !== 116 && t !== 32) return undefined; // T, t or space
  const last = text.charCodeAt(n - 1);
  if (last !== 90 && last !== 122) return undefined; // Z or z
  const hour = twoDigits(text, 11), minute = twoDigits(text, 14), second = twoDigits(text, 17);
  if (hour < 0 || minute < 0 || second < 0 || hour > 23 || minute > 59 || second > 59) return undefined;
  let fracUs = 0;
  if (n > 20) {
    const sep = text.charCodeAt(19);
    if ((sep !== 46 && sep !== 44) || n - 21 > 9 || n - 21 < 1) return undefined;
    // Digits after the sixth are checked but dropped (truncation to µs).
    let scale = 100000;
    for (let i = 20; i < n - 1; i++) {
      const d = text.charCodeAt(i) - 48;
      if (d < 0 || d > 9) return undefined;
      fracUs += d * scale;
      scale = scale >= 10 ? scale / 10 : 0;
    }
  }
  // startsWith, not slice: no string is made per call while the day stays the same.
  if ((cachedDate === "" || !text.startsWith(cachedDate)) && !cacheDay(text.slice(0, 10))) return null;
  return (cachedDayMs + hour * 3_600_000 + minute * 60_000 + second * 1000) * 1000 + fracUs;
}

/** Makes `date` ('YYYY-MM-DD') the cached day; false when it is no date. */
function cacheDay(date: string): boolean {
  const dayStart = parseTimestampSlow(`${date}T00:00:00Z`);
  if (dayStart === null) return false;
  cachedDate = date;
  cachedDayMs = dayStart / 1000;
  for (let i = 0; i < 10; i++) cachedDateBytes[i] = date.charCodeAt(i);
  return true;
}
const cachedDateBytes = new Uint8Array(10);

const twoDigitBytes = (buf: Uint8Array, i: number) => {
  const a = buf[i]! - 48;
  const b = buf[i + 1]! - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
};

/**
 * parseTimestampText of the ASCII text in buf[from, to), for the canonical
 * UTC form only ('YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z'): a JSON scanner reads such
 * timestamps without making their text. undefined for any other text or an
 * impossible value: the caller then makes the text and calls parseTimestampText,
 * which decides (and names the error).
 */
export function parseCanonicalUtcBytes(buf: Uint8Array, from: number, to: number): number | undefined {
  const n = to - from;
  if (n < 20 || buf[from + 4] !== 45 || buf[from + 7] !== 45 || buf[from + 13] !== 58 || buf[from + 16] !== 58) return undefined;
  const t = buf[from + 10];
  if (t !== 84 && t !== 116 && t !== 32) return undefined;
  const last = buf[to - 1];
  if (last !== 90 && last !== 122) return undefined;
  const hour = twoDigitBytes(buf, from + 11), minute = twoDigitBytes(buf, from + 14), second = twoDigitBytes(buf, from + 17);
  if (hour < 0 || minute < 0 || second < 0 || hour > 23 || minute > 59 || second > 59) return undefined;
  let fracUs = 0;
  if (n > 20) {
    const sep = buf[from + 19];
    if ((sep !== 46 && sep !== 44) || n - 21 > 9 || n - 21 < 1) return undefined;
    let scale = 100000;
    for (let i = from + 20; i < to - 1; i++) {
      const d = buf[i]! - 48;
      if (d < 0 || d > 9) return undefined;
      fracUs += d * scale;
      scale = scale >= 10 ? scale / 10 : 0;
    }
  }
  let same = cachedDate !== "";
  for (let i = 0; same && i < 10; i++) same = buf[from + i] === cachedDateBytes[i];
  if (!same) {
    let date = "";
    for (let i = 0; i < 10; i++) date += String.fromCharCode(buf[from + i]!);
    if (!cacheDay(date)) return undefined;
  }
  return (cachedDayMs + hour * 3_600_000 + minute * 60_000 + second * 1000) * 1000 + fracUs;
}

function parseTimestampSlow(text: string): number | null {
  const m = RFC3339.exec(text.trim());
  if (!m) return null;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = m[4] ? Number(m[4]) : 0;
  const minute = m[5] ? Number(m[5]) : 0;
  const second = m[6] ? Number(m[6]) : 0;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) return null;
  let ms = Date.UTC(year, month - 1, day, hour, minute, second);
  if (year >= 0 && year < 100) {
    // Date.UTC maps years 0..99 to 1900..1999.
    const d = new Date(ms);
    d.setUTCFullYear(year);
    ms = d.getTime();
  }
  if (!Number.isFinite(ms)) return null;
  // Reject days past the end of the month (Date.UTC would roll them over).
  if (new Date(ms).getUTCDate() !== day && second !== 60) return null;
  let us = ms * 1000;
  const frac = m[7];
  if (frac) {
    const digits = frac.length > 6 ? frac.slice(0, 6) : frac;
    us += Number(digits) * FRACTION_SCALE[digits.length]!;
  }
  if (m[9]) {
    const offsetMinutes = Number(m[10]) * 60 + (m[11] ? Number(m[11]) : 0);
    us -= (m[9] === "-" ? -1 : 1) * offsetMinutes * 60_000_000;
  }
  return us;
}

/**
 * Formats µs since the epoch as RFC 3339 in UTC: '2024-01-01T00:00:00Z', with
 * fractional seconds only when they are not zero (3 digits for whole
 * milliseconds, else 6).
 */
export function formatTimestamp(us: number): string {
  if (!Number.isInteger(us)) us = Math.round(us);
  const second = Math.floor(us / 1e6);
  // Rows come mostly in time order, many a second: the text up to the second is reused (a Date per row was 8% of q10).
  if (second !== lastSecond) {
    lastSecondText = new Date(second * 1000).toISOString().slice(0, -5); // yyyy-mm-ddThh:mm:ss
    lastSecond = second;
  }
  const micros = us - second * 1e6;
  if (micros === 0) return lastSecondText + "Z";
  if (micros % 1000 === 0) return `${lastSecondText}.${String(micros / 1000).padStart(3, "0")}Z`;
  return `${lastSecondText}.${String(micros).padStart(6, "0")}Z`;
}
let lastSecond = Number.NaN;
let lastSecondText = "";

/**
 * Reads a timestamp option: RFC 3339 text or an integer number of µs since the
 * epoch. Throws an Error naming the option when it is neither.
 */
export function parseTimestampOption(raw: string, option: string): number {
  const s = raw.trim();
  if (/^-?\d+$/.test(s)) return Number(s);
  const us = parseTimestampText(s);
  if (us === null) {
    throw new Error(
      `option '${option}': '${raw}' is not a timestamp; give RFC 3339 text such as '2024-01-01T00:00:00Z' or a whole number of microseconds since the epoch`,
    );
  }
  return us;
}
