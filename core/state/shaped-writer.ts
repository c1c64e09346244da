/**
 * Put records written by code compiled for their shape. A table's records
 * mostly share one shape (a key of a number and a string, a value of two
 * numbers...), and the generic writer spends most of a record on asking each
 * value what it is, one call and one room check per value: 90-170 ns a record
 * of a grouped count and sum, against 35-45 ns written by hand. A ShapedWriter
 * learns a shape from a record, compiles a writer that checks the whole record
 * against it first and then writes it with one room check and no dispatch, and
 * falls back to the generic writer for records of no shape it knows. The bytes
 * are the generic writer's, so files and readers do not change.
 *
 * The compiled source holds only fixed code, array lengths and indices: never
 * a value, a name or anything else from a pipeline.
 */
import { ByteBuffer, writeNumberAt, writePut, writeString, writeValue } from "./record-writer.ts";

/**
 * What a compiled writer expects at one place of a record. Numbers, strings
 * and booleans may also be null there (aggregates of nothing, nullable
 * columns); arrays shorter than 16 have their elements' shapes; anything else
 * (objects, bigints, dates, longer arrays, a null first seen) is written by the
 * generic writer.
 */
type Shape = "number" | "string" | "boolean" | "any" | Shape[];

/** Array depth a shape describes; deeper values are written generically. */
const MAX_DEPTH = 4;
/** Shapes a writer compiles before it writes every further new shape generically (each costs a compilation). */
const MAX_SHAPES = 4;

function shapeOf(v: unknown, depth: number): Shape {
  if (typeof v === "number") return "number";
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "boolean";
  if (Array.isArray(v) && v.length < 16 && depth < MAX_DEPTH) return v.map((x) => shapeOf(x, depth + 1));
  return "any";
}

/** A float64 is written big-endian (as MessagePack has it) from these bytes: its own, in this machine's order. */
const F64 = new Float64Array(1);
const F64_BYTES = new Uint8Array(F64.buffer);
F64[0] = 1;
const BIG_ENDIAN_ORDER = F64_BYTES[7] === 0x3f ? [7, 6, 5, 4, 3, 2, 1, 0] : [0, 1, 2, 3, 4, 5, 6, 7];

/**
 * The code writing number `x` (a local) at `p`: positive integers below 2^32
 * (hashes, counts, most keys) and float64s (fractions, times in µs) inline;
 * zero and negative integers through writeNumberAt. A call per number cost
 * about 15 ns, half a record's time: JSC does not inline writeNumberAt, which
 * is too large. The bytes are writeNumberAt's.
 */
function numberCode(x: string): string {
  return `if (${x} >>> 0 === ${x} && ${x} !== 0) {
    if (${x} < 0x80) b[p++] = ${x};
    else if (${x} < 0x100) (b[p] = 0xcc), (b[p + 1] = ${x}), (p += 2);
    else if (${x} < 0x10000) (b[p] = 0xcd), (b[p + 1] = ${x} >>> 8), (b[p + 2] = ${x}), (p += 3);
    else (b[p] = 0xce), (b[p + 1] = ${x} >>> 24), (b[p + 2] = ${x} >>> 16), (b[p + 3] = ${x} >>> 8), (b[p + 4] = ${x}), (p += 5);
  } else if ((${x} | 0) !== ${x} && ${x} >>> 0 !== ${x}) {
    F64[0] = ${x};
    (b[p] = 0xcb), ${BIG_ENDIAN_ORDER.map((byte, i) => `(b[p + ${i + 1}] = F64_BYTES[${byte}])`).join(", ")}, (p += 9);
  } else p = writeNumberAt(b, view, p, ${x});`;
}

type CompiledPut = (w: ByteBuffer, time: number | null, hash: number, key: readonly unknown[], value: unknown) => boolean;

/**
 * Compiles a put writer for records whose key and value have these shapes:
 * false (nothing written) for a record of another shape.
 */
function compile(key: Shape[], value: Shape): CompiledPut {
  const checks: string[] = [];
  const writes: string[] = [];
  let fixed = 0;
  let locals = 0;
  // Checks `expr` against `shape` into locals, and adds the code writing it.
  const visit = (expr: string, shape: Shape): void => {
    const x = `v${locals++}`;
    checks.push(`const ${x} = ${expr};`);
    if (Array.isArray(shape)) {
      checks.push(`if (!Array.isArray(${x}) || ${x}.length !== ${shape.length}) return false;`);
      writes.push(`b[p++] = ${0x90 | shape.length};`);
      fixed += 1;
      shape.forEach((s, i) => visit(`${x}[${i}]`, s));
      return;
    }
    switch (shape) {
      case "number":
        checks.push(`if (typeof ${x} !== "number" && ${x} !== null) return false;`);
        writes.push(`if (${x} === null) b[p++] = 0xc0; else ${numberCode(x)}`);
        fixed += 9;
        return;
      case "boolean":
        checks.push(`if (typeof ${x} !== "boolean" && ${x} !== null) return false;`);
        writes.push(`b[p++] = ${x} === null ? 0xc0 : ${x} ? 0xc3 : 0xc2;`);
        fixed += 1;
        return;
      case "string":
        checks.push(`if (typeof ${x} !== "string" && ${x} !== null) return false;`);
        writes.push(`if (${x} === null) b[p++] = 0xc0; else { w.n = p; writeString(w, ${x}); w.room(FIXED); p = w.n; b = w.buf; view = w.view; }`);
        return;
      default:
        writes.push(`w.n = p; writeValue(w, ${x}); w.room(FIXED); p = w.n; b = w.buf; view = w.view;`);
    }
  };
  checks.push(`if (key.length !== ${key.length}) return false;`);
  key.forEach((s, i) => visit(`key[${i}]`, s));
  writes.unshift(`b[p++] = ${0x90 | key.length};`);
  fixed += 1;
  visit("value", value);
  // The record's array header and kind, its time (a number or null) and hash.
  fixed += 2 + 9 + 9;
  const source = `return function put(w, time, hash, key, value) {
  if (typeof time !== "number" && time !== null) return false;
  ${checks.join("\n  ")}
  w.room(FIXED);
  let b = w.buf, view = w.view, p = w.n;
  b[p] = 0x95; b[p + 1] = 1; p += 2;
  if (time === null) b[p++] = 0xc0; else ${numberCode("time")}
  ${numberCode("hash")}
  ${writes.join("\n  ")}
  w.n = p;
  return true;
}`.replaceAll("FIXED", String(fixed));
  return new Function("writeNumberAt", "writeString", "writeValue", "F64", "F64_BYTES", source)(writeNumberAt, writeString, writeValue, F64, F64_BYTES) as CompiledPut;
}

/** Writes a table's put records, through writers compiled for the shapes it has seen. */
export class ShapedWriter {
  private readonly compiled: CompiledPut[] = [];

  /** Shapes compiled so far. */
  get shapes(): number {
    return this.compiled.length;
  }

  /** Appends `[1, time, hash, key, value]`, the bytes writePut writes. */
  put(w: ByteBuffer, time: number | null, hash: number, key: readonly unknown[], value: unknown): void {
    const compiled = this.compiled;
    for (let i = 0; i < compiled.length; i++) if (compiled[i]!(w, time, hash, key, value)) return;
    // A key of 16 values or more takes a longer array header than a compiled writer writes.
    if (compiled.length < MAX_SHAPES && key.length < 16) {
      const put = compile(
        key.map((k) => shapeOf(k, 1)),
        shapeOf(value, 0),
      );
      compiled.push(put);
      if (put(w, time, hash, key, value)) return;
    }
    writePut(w, time, hash, key, value);
  }
}
