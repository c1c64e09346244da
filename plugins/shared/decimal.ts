/**
 * Decimals as Avro, Kafka Connect and Arroyo's JSON `decimal_encoding = 'bytes'`
 * carry them: the unscaled value as big-endian two's complement bytes, with the
 * scale known from the schema. Runnel holds DECIMAL values as numbers (doubles).
 */

/** The number an unscaled two's complement value with `scale` decimal places stands for. */
export function decodeTwosComplement(bytes: Uint8Array, scale: number): number {
  let n = 0n;
  for (let i = 0; i < bytes.length; i++) n = (n << 8n) | BigInt(bytes[i]!);
  if (bytes.length > 0 && bytes[0]! & 0x80) n -= 1n << BigInt(bytes.length * 8);
  return scale === 0 ? Number(n) : Number(n) / 10 ** scale;
}

/** The shortest big-endian two's complement bytes of `value` × 10^scale (rounded to a whole number). */
export function encodeTwosComplement(value: number, scale: number): Uint8Array {
  if (!Number.isFinite(value)) throw new Error(`${value} cannot be written as a decimal`);
  // toFixed rounds the decimal expansion of the double, not its binary product with 10^scale.
  let n = BigInt(Math.abs(value) < 1e21 ? value.toFixed(scale).replace(".", "") : Math.round(value * 10 ** scale).toLocaleString("en-US", { useGrouping: false }));
  const out: number[] = [];
  for (;;) {
    const byte = Number(n & 0xffn);
    out.unshift(byte);
    n >>= 8n;
    // Done once the rest is only the sign extension of this byte.
    if ((n === 0n && (byte & 0x80) === 0) || (n === -1n && (byte & 0x80) !== 0)) break;
  }
  return Uint8Array.from(out);
}

/** A decimal as full-precision text with exactly `scale` digits after the point (Arroyo's `decimal_encoding = 'string'`). */
export function decimalText(value: number, scale: number): string {
  return Math.abs(value) < 1e21 ? value.toFixed(scale) : String(value);
}
