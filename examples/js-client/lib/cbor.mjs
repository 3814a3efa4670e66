// Canonical CBOR subset of spec/encoding.md: the encoder and the generic item decoder.
//
// Values: unsigned integers are BigInt when decoded (the encoder also takes a safe
// Number), byte strings Uint8Array, text strings string, arrays Array, and true / false /
// null. Nothing else is in the subset: no maps, tags, negatives, floats or indefinite
// lengths. Typed decoding (arity, field types, limits of one structure) is in types.mjs.

/** A decoding failure: the input is not a canonical Souk object. */
export class DecodeError extends Error {
  constructor(reason, offset, detail) {
    super(`${reason} at byte ${offset}${detail ? `: ${detail}` : ''}`);
    this.name = 'DecodeError';
    this.reason = reason;
    this.offset = offset;
  }
}

/** Nesting limit of encoding.md decoding rule 6. */
export const MAX_DEPTH = 16;

const U64_MAX = (1n << 64n) - 1n;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const utf8enc = new TextEncoder();

function head(major, value, out) {
  const v = BigInt(value);
  if (v < 0n || v > U64_MAX) throw new RangeError(`integer out of range: ${v}`);
  const m = major << 5;
  if (v < 24n) out.push(m | Number(v));
  else if (v < 0x100n) out.push(m | 24, Number(v));
  else if (v < 0x10000n) out.push(m | 25, Number(v >> 8n), Number(v & 0xffn));
  else if (v < 0x100000000n) {
    out.push(m | 26);
    for (let s = 24n; s >= 0n; s -= 8n) out.push(Number((v >> s) & 0xffn));
  } else {
    out.push(m | 27);
    for (let s = 56n; s >= 0n; s -= 8n) out.push(Number((v >> s) & 0xffn));
  }
}

function encodeInto(value, out) {
  if (value === null) out.push(0xf6);
  else if (value === true) out.push(0xf5);
  else if (value === false) out.push(0xf4);
  else if (typeof value === 'bigint') head(0, value, out);
  else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a uint: ${value}`);
    head(0, value, out);
  } else if (value instanceof Uint8Array) {
    head(2, value.length, out);
    for (let i = 0; i < value.length; i++) out.push(value[i]);
  } else if (typeof value === 'string') {
    const b = utf8enc.encode(value);
    head(3, b.length, out);
    for (let i = 0; i < b.length; i++) out.push(b[i]);
  } else if (Array.isArray(value)) {
    head(4, value.length, out);
    for (const v of value) encodeInto(v, out);
  } else {
    throw new TypeError(`value outside the CBOR subset: ${typeof value}`);
  }
}

/** Canonical encoding: shortest heads, definite lengths, fields in the given order. */
export function encode(value) {
  const out = [];
  encodeInto(value, out);
  return Uint8Array.from(out);
}

class Reader {
  constructor(bytes) {
    this.b = bytes;
    this.pos = 0;
  }

  /** Reads a head; returns [major, argument (BigInt), offset of the head]. */
  head() {
    const at = this.pos;
    if (this.pos >= this.b.length) throw new DecodeError('Truncated', at);
    const ib = this.b[this.pos++];
    const major = ib >> 5;
    const ai = ib & 0x1f;
    if (ai === 31) throw new DecodeError('Indefinite', at);
    if (ai >= 28) throw new DecodeError('Unsupported', at, `reserved additional information ${ai}`);
    if (ai < 24) return [major, BigInt(ai), at, ai];
    const n = 1 << (ai - 24);
    if (this.pos + n > this.b.length) throw new DecodeError('Truncated', at);
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(this.b[this.pos++]);
    const min = ai === 24 ? 24n : ai === 25 ? 0x100n : ai === 26 ? 0x10000n : 0x100000000n;
    if (v < min) throw new DecodeError('NonMinimal', at);
    return [major, v, at, ai];
  }

  item(depth) {
    const [major, arg, at, ai] = this.head();
    switch (major) {
      case 0:
        return arg;
      case 2:
      case 3: {
        if (arg > BigInt(this.b.length - this.pos)) throw new DecodeError('Truncated', at);
        const n = Number(arg);
        const s = this.b.subarray(this.pos, this.pos + n);
        const start = this.pos;
        this.pos += n;
        if (major === 2) return s.slice();
        try {
          return utf8.decode(s);
        } catch {
          throw new DecodeError('InvalidUtf8', start);
        }
      }
      case 4: {
        if (depth + 1 > MAX_DEPTH) throw new DecodeError('TooDeep', at);
        // Each element takes at least one byte: a longer array cannot fit.
        if (arg > BigInt(this.b.length - this.pos)) throw new DecodeError('Truncated', at);
        const n = Number(arg);
        const a = new Array(n);
        for (let i = 0; i < n; i++) a[i] = this.item(depth + 1);
        return a;
      }
      case 7:
        if (ai === 20) return false;
        if (ai === 21) return true;
        if (ai === 22) return null;
        throw new DecodeError('Unsupported', at, 'simple value or float');
      default:
        throw new DecodeError('Unsupported', at, `major type ${major}`);
    }
  }
}

function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Decodes one item of the subset (rules 1–6 and 8 of encoding.md, and the re-encoding
 * rule 9): `limit` is the object's size limit, checked before parsing.
 */
export function decode(bytes, limit) {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('bytes must be a Uint8Array');
  if (limit !== undefined && bytes.length > limit) {
    throw new DecodeError('TooLarge', 0, `${bytes.length} > ${limit} bytes`);
  }
  const r = new Reader(bytes);
  const value = r.item(0);
  if (r.pos !== bytes.length) throw new DecodeError('TrailingBytes', r.pos);
  if (!equalBytes(encode(value), bytes)) throw new DecodeError('NotCanonical', 0);
  return value;
}

export { equalBytes };
