// The JSON profile of manifest schemas: rules J1–J7 of spec/manifest.md (JSON texts).
// A self-contained checker: JSON.parse accepts texts the profile rejects, so it is not used.

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
export const MAX_JSON_DEPTH = 64;
/** 2^1024 − 2^970 written out (309 digits), the J7 bound. */
const LIMIT_DIGITS = ((1n << 1024n) - (1n << 970n)).toString();

class JsonError extends Error {}
const bad = (rule, msg) => {
  throw new JsonError(`${rule}: ${msg}`);
};

const isNonCharacter = (cp) => (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe;
const isWs = (c) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c) => c >= 0x30 && c <= 0x39;
const HEX = /^[0-9a-fA-F]{4}$/;

/** J7 on the digits of one number (no float parsing). */
function numberInRange(intDigits, fracDigits, expText) {
  const D = intDigits + fracDigits;
  const k = D.search(/[1-9]/);
  if (k < 0) return true;
  let e = 0n;
  if (expText !== null) {
    const neg = expText.startsWith('-');
    const digits = expText.replace(/^[+-]/, '');
    e = BigInt(digits) * (neg ? -1n : 1n);
  }
  const P = BigInt(intDigits.length - k) + e;
  if (P < 309n) return true;
  if (P > 309n) return false;
  const S = D.slice(k).replace(/0+$/, '');
  return S < LIMIT_DIGITS; // same-alphabet digit strings: lexicographic, proper prefix smaller
}

class Parser {
  constructor(text) {
    this.s = text;
    this.i = 0;
  }
  peek() {
    return this.i < this.s.length ? this.s.charCodeAt(this.i) : -1;
  }
  ws() {
    while (isWs(this.peek())) this.i++;
  }
  expect(ch) {
    if (this.s[this.i] !== ch) bad('J2', `expected '${ch}' at ${this.i}`);
    this.i++;
  }
  value(depth) {
    const c = this.peek();
    if (c === 0x7b) return this.object(depth + 1);
    if (c === 0x5b) return this.array(depth + 1);
    if (c === 0x22) return this.string();
    if (c === 0x2d || isDigit(c)) return this.number();
    for (const lit of ['true', 'false', 'null']) {
      if (this.s.startsWith(lit, this.i)) {
        this.i += lit.length;
        return;
      }
    }
    bad('J2', `unexpected character at ${this.i}`);
  }
  object(depth) {
    if (depth > MAX_JSON_DEPTH) bad('J6', 'nested deeper than 64 levels');
    this.expect('{');
    this.ws();
    const names = new Set();
    if (this.peek() === 0x7d) {
      this.i++;
      return;
    }
    for (;;) {
      if (this.peek() !== 0x22) bad('J2', `expected a member name at ${this.i}`);
      const name = this.string();
      if (names.has(name)) bad('J5', `duplicate member name ${JSON.stringify(name)}`);
      names.add(name);
      this.ws();
      this.expect(':');
      this.ws();
      this.value(depth);
      this.ws();
      if (this.peek() === 0x2c) {
        this.i++;
        this.ws();
        continue;
      }
      this.expect('}');
      return;
    }
  }
  array(depth) {
    if (depth > MAX_JSON_DEPTH) bad('J6', 'nested deeper than 64 levels');
    this.expect('[');
    this.ws();
    if (this.peek() === 0x5d) {
      this.i++;
      return;
    }
    for (;;) {
      this.value(depth);
      this.ws();
      if (this.peek() === 0x2c) {
        this.i++;
        this.ws();
        continue;
      }
      this.expect(']');
      return;
    }
  }
  hex4() {
    const h = this.s.slice(this.i, this.i + 4);
    if (!HEX.test(h)) bad('J2', `bad \\u escape at ${this.i}`);
    this.i += 4;
    return parseInt(h, 16);
  }
  /** Returns the decoded string (for J5). */
  string() {
    this.expect('"');
    let out = '';
    for (;;) {
      if (this.i >= this.s.length) bad('J2', 'unterminated string');
      const cp = this.s.codePointAt(this.i);
      if (cp === 0x22) {
        this.i++;
        return out;
      }
      if (cp < 0x20) bad('J2', 'raw control character in a string');
      if (cp === 0x5c) {
        this.i++;
        const e = this.s[this.i++];
        const simple = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e in simple) {
          out += simple[e];
          continue;
        }
        if (e !== 'u') bad('J2', 'bad escape');
        let u = this.hex4();
        if (u >= 0xdc00 && u <= 0xdfff) bad('J3', 'escaped low surrogate first');
        if (u >= 0xd800 && u <= 0xdbff) {
          if (this.s[this.i] !== '\\' || this.s[this.i + 1] !== 'u') bad('J3', 'high surrogate not followed by \\u');
          this.i += 2;
          const lo = this.hex4();
          if (lo < 0xdc00 || lo > 0xdfff) bad('J3', 'high surrogate not followed by a low surrogate');
          u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        }
        if (isNonCharacter(u)) bad('J4', `noncharacter U+${u.toString(16)}`);
        out += String.fromCodePoint(u);
        continue;
      }
      if (isNonCharacter(cp)) bad('J4', `noncharacter U+${cp.toString(16)}`);
      const ch = String.fromCodePoint(cp);
      out += ch;
      this.i += ch.length;
    }
  }
  number() {
    const start = this.i;
    if (this.peek() === 0x2d) this.i++;
    const intStart = this.i;
    if (this.peek() === 0x30) this.i++;
    else if (isDigit(this.peek())) while (isDigit(this.peek())) this.i++;
    else bad('J2', `bad number at ${start}`);
    const intDigits = this.s.slice(intStart, this.i);
    let fracDigits = '';
    if (this.peek() === 0x2e) {
      this.i++;
      const f = this.i;
      while (isDigit(this.peek())) this.i++;
      if (this.i === f) bad('J2', `bad fraction at ${start}`);
      fracDigits = this.s.slice(f, this.i);
    }
    let expText = null;
    if (this.peek() === 0x65 || this.peek() === 0x45) {
      this.i++;
      const x = this.i;
      if (this.peek() === 0x2b || this.peek() === 0x2d) this.i++;
      const d = this.i;
      while (isDigit(this.peek())) this.i++;
      if (this.i === d) bad('J2', `bad exponent at ${start}`);
      expText = this.s.slice(x, this.i);
    }
    if (!numberInRange(intDigits, fracDigits, expText)) bad('J7', `number out of range at ${start}`);
  }
}

/**
 * Checks a JSON text (bytes or an already decoded string) against the manifest profile.
 * Returns null when it is accepted, or the reason ("J2: ...") when not.
 */
export function jsonProfileProblem(text) {
  let s = text;
  if (text instanceof Uint8Array) {
    try {
      s = utf8.decode(text);
    } catch {
      return 'J1: not UTF-8';
    }
  }
  const p = new Parser(s);
  try {
    p.ws();
    if (p.peek() !== 0x7b) bad('J2', 'the top level is not an object');
    p.value(0);
    p.ws();
    if (p.i !== s.length) bad('J2', `trailing characters at ${p.i}`);
    return null;
  } catch (e) {
    if (e instanceof JsonError) return e.message;
    throw e;
  }
}
