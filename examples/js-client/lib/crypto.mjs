// Hashes, ids, commitments, keys and signatures: spec/encoding.md (domain separation,
// signature validity) and spec/identity.md (NodeId validity, text form, PeerId).

import { blake3 } from '@noble/hashes/blake3.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { equalBytes } from './cbor.mjs';

const enc = new TextEncoder();
const Point = ed25519.Point;
/** L, the prime order of the base point. */
export const L = (1n << 252n) + 27742317777372353535851937790883648493n;

export const TAGS = Object.freeze({
  manifest: 'souk/v1/manifest',
  request: 'souk/v1/hire-request',
  offer: 'souk/v1/offer',
  counter: 'souk/v1/counter',
  decline: 'souk/v1/decline',
  accept: 'souk/v1/accept',
  contract: 'souk/v1/contract',
  receipt: 'souk/v1/receipt',
  attestation: 'souk/v1/attestation',
  commitment: 'souk/v1/commitment',
  relayRecord: 'souk/v1/relay-record',
  manifestTerms: 'souk/v1/manifest-terms',
  manifestId: 'souk/v1/manifest-id',
});

export function concat(...parts) {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export const hex = (b) => Buffer.from(b).toString('hex');
export function unhex(s) {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new Error(`not hex: ${String(s).slice(0, 20)}`);
  }
  return new Uint8Array(Buffer.from(s, 'hex'));
}

/** Plain BLAKE3 (content digests: output hash, runtime digest, ...). */
export const hash = (data) => blake3(data);

/** `tag || 0x00 || body`, the signing input. */
export const signingInput = (tag, body) => concat(enc.encode(tag), Uint8Array.of(0), body);

/** `BLAKE3(tag || 0x00 || body)`, an object id. */
export const taggedId = (tag, body) => blake3(signingInput(tag, body));

/** Salted commitment: `BLAKE3("souk/v1/commitment" || 0x00 || salt || payload)`. */
export const commit = (salt, payload) => blake3(concat(signingInput(TAGS.commitment, salt), payload));

// ---- keys ----

/** The public key of a 32-byte seed (RFC 8032 §5.1.5). */
export const publicKeyOf = (seed) => ed25519.getPublicKey(seed);

/** RFC 8032 signature of `tag || 0x00 || body`. */
export const sign = (seed, tag, body) => ed25519.sign(signingInput(tag, body), seed);

/** Why bytes are not a valid NodeId (identity.md), or null when they are. */
export function nodeIdProblem(a) {
  if (!(a instanceof Uint8Array) || a.length !== 32) return 'not 32 bytes';
  let p;
  try {
    p = Point.fromBytes(a, false);
  } catch {
    return 'not a curve point';
  }
  if (!equalBytes(p.toBytes(), a)) return 'not canonical';
  if (p.isSmallOrder()) return 'small order';
  if (!p.isTorsionFree()) return 'not in the prime-order subgroup';
  return null;
}

export const isValidNodeId = (a) => nodeIdProblem(a) === null;

const P = (1n << 255n) - 19n;
function leToBig(b) {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  return v;
}

/** Decodes R as rule 3 of signature validity: y reduced mod p, x = 0 with sign bit allowed. */
function decodeR(rEnc) {
  const sign = rEnc[31] & 0x80;
  let y = leToBig(rEnc.subarray(0, 32)) & ((1n << 255n) - 1n);
  if (y >= P) y -= P; // at most once: y < 2^255 < 2p
  const b = new Uint8Array(32);
  for (let i = 0; i < 32; i++) b[i] = Number((y >> BigInt(8 * i)) & 0xffn);
  b[31] |= sign;
  return Point.fromBytes(b, true);
}

/**
 * Signature validity of encoding.md: the key rule, S < L, R decodes (non-canonical allowed),
 * the cofactored equation with k over the bytes as sent.
 */
export function verify(publicKey, message, signature) {
  if (!isValidNodeId(publicKey)) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  const rEnc = signature.subarray(0, 32);
  const s = leToBig(signature.subarray(32, 64));
  if (s >= L) return false;
  let R;
  try {
    R = decodeR(rEnc);
  } catch {
    return false;
  }
  const A = Point.fromBytes(publicKey, false);
  const k = leToBig(sha512(concat(rEnc, publicKey, message))) % L;
  const sB = s === 0n ? Point.ZERO : Point.BASE.multiply(s);
  const kA = k === 0n ? Point.ZERO : A.multiplyUnsafe(k);
  return sB.subtract(R).subtract(kA).clearCofactor().is0();
}

/** Verifies a signature over `tag || 0x00 || body`. */
export const verifyTagged = (publicKey, tag, body, signature) =>
  verify(publicKey, signingInput(tag, body), signature);

// ---- text forms ----

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** `souk` + lowercase unpadded base32 of the key (identity.md). */
export function nodeIdText(key) {
  let bits = 0;
  let value = 0;
  let out = 'souk';
  for (const byte of key) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += B32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  if (bits > 0) out += B32[(value << (5 - bits)) & 31];
  return out;
}

/** Parses a `souk…` text form by the five rules of identity.md; throws on any failure. */
export function parseNodeIdText(text) {
  if (typeof text !== 'string' || !text.startsWith('souk')) throw new Error('no souk prefix');
  const rest = text.slice(4);
  if (rest.length !== 52 || !/^[a-z2-7]+$/.test(rest)) throw new Error('not 52 base32 characters');
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of rest) {
    value = (value << 5) | B32.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
    value &= (1 << bits) - 1;
  }
  if (value !== 0) throw new Error('unused trailing bits are not zero');
  const key = Uint8Array.from(out);
  const problem = nodeIdProblem(key);
  if (problem) throw new Error(`not a valid NodeId: ${problem}`);
  if (nodeIdText(key) !== text) throw new Error('does not round-trip');
  return key;
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const PEER_PREFIX = Uint8Array.of(0x00, 0x24, 0x08, 0x01, 0x12, 0x20);

/** The 38 PeerId bytes of a NodeId: `002408011220 || key`. */
export const peerIdBytes = (key) => concat(PEER_PREFIX, key);

/** The NodeId inside PeerId bytes, or null if they are not an ed25519 identity PeerId. */
export function nodeIdOfPeerIdBytes(bytes) {
  if (bytes.length !== 38 || !equalBytes(bytes.subarray(0, 6), PEER_PREFIX)) return null;
  return bytes.slice(6);
}

export function base58(bytes) {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let out = '';
  while (n > 0n) {
    out = B58[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = '1' + out;
  }
  return out;
}

export function unbase58(text) {
  let n = 0n;
  for (const c of text) {
    const d = B58.indexOf(c);
    if (d < 0) throw new Error('not base58');
    n = n * 58n + BigInt(d);
  }
  const out = [];
  while (n > 0n) {
    out.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  for (const c of text) {
    if (c !== '1') break;
    out.unshift(0);
  }
  return Uint8Array.from(out);
}

/** The PeerId text of a NodeId (base58btc of the identity multihash). */
export const peerIdText = (key) => base58(peerIdBytes(key));
