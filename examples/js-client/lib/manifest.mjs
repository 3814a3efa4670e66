// Manifests (spec/manifest.md): M1 (decode + signature), M2 (content rules), the stable
// manifest id, freshness.

import { encode } from './cbor.mjs';
import { TAGS, taggedId, verifyTagged, nodeIdText } from './crypto.mjs';
import { decodeEnvelope, LIMITS, manifestBody } from './types.mjs';
import { jsonProfileProblem } from './json-profile.mjs';

export class RuleError extends Error {
  constructor(rule, detail, entry = null) {
    super(`${rule}${entry === null ? '' : ` at entry ${entry}`}: ${detail}`);
    this.name = 'RuleError';
    this.rule = rule;
    this.entry = entry;
    this.detail = detail;
  }
}

export const MAX_DURATION_MS = 2592000000n;
export const MAX_MANIFEST_TTL_MS = 604800000n;
export const MAX_CLOCK_SKEW_MS = 300000n;

const cmpBytes = (a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
const strictlyIncreasing = (xs) => xs.every((x, i) => i === 0 || cmpBytes(xs[i - 1], x) < 0);

/** A *name*: 1–64 bytes of a–z 0–9 '-', not starting or ending with '-'. */
export const isName = (s) => /^[a-z0-9-]{1,64}$/.test(s) && !s.startsWith('-') && !s.endsWith('-');

/** A *host*: name or name:port (manifest.md). */
export function isHost(h) {
  let name = h;
  const c = h.lastIndexOf(':');
  if (c >= 0) {
    name = h.slice(0, c);
    const port = h.slice(c + 1);
    if (!/^[1-9][0-9]{0,4}$/.test(port) || Number(port) > 65535) return false;
  }
  if (name.length < 1 || Buffer.byteLength(name) > 253) return false;
  return name.split('.').every((l) => /^[a-z0-9-]{1,63}$/.test(l) && !l.startsWith('-') && !l.endsWith('-'));
}

// Unicode White_Space (what Rust's str::trim strips). JS's \s differs (U+FEFF in, U+0085 out).
const WHITE_SPACE = /^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

/** The M2 content rules; returns the first problem found, or null. */
export function contentProblem(m) {
  if (!isName(m.name)) return 'name is not a name';
  if (m.capabilities.length < 1) return 'no capability';
  for (const c of m.capabilities) if (!/^[a-z0-9][a-z0-9.:/-]{0,47}$/.test(c)) return `bad capability ${c}`;
  if (!strictlyIncreasing(m.capabilities)) return 'capabilities not strictly increasing';
  if (WHITE_SPACE.test(m.description)) return 'description is blank';
  for (const [f, s] of [['input-schema', m.inputSchema], ['output-schema', m.outputSchema]]) {
    const p = jsonProfileProblem(s);
    if (p) return `${f}: ${p}`;
  }
  for (const t of m.tools) if (!isName(t.name)) return `tool name ${t.name} is not a name`;
  if (!strictlyIncreasing(m.tools.map((t) => t.name))) return 'tools not strictly increasing';
  for (const h of m.hosts) if (!isHost(h)) return `bad host ${h}`;
  if (!strictlyIncreasing(m.hosts)) return 'hosts not strictly increasing';
  if (!strictlyIncreasing(m.credentials.map((s) => s.name))) return 'credential slots not strictly increasing';
  for (const s of m.credentials) {
    if (!isName(s.name)) return `slot name ${s.name} is not a name`;
    if (s.hosts.length < 1) return `slot ${s.name} has no host`;
    for (const h of s.hosts) if (!isHost(h)) return `slot ${s.name}: bad host ${h}`;
    if (!strictlyIncreasing(s.hosts)) return `slot ${s.name}: hosts not strictly increasing`;
    const inj = s.injection;
    if (inj.kind === 'header') {
      if (!/^[\x20-\x7e]*$/.test(inj.prefix)) return `slot ${s.name}: bad header prefix`;
      if (!/^[a-z0-9-]+$/.test(inj.name)) return `slot ${s.name}: bad header name`;
    }
    if (inj.kind === 'query' && !/^[A-Za-z0-9_-]+$/.test(inj.param)) return `slot ${s.name}: bad query param`;
  }
  if (!/^[A-Z0-9]{3,12}$/.test(m.pricing.currency)) return 'bad currency';
  const l = m.limits;
  if (l.maxDurationMs < 1n || l.maxDurationMs > MAX_DURATION_MS) return 'max-duration-ms out of range';
  if (l.maxConcurrency < 1n) return 'max-concurrency is 0';
  if (l.maxInputBytes < 1n) return 'max-input-bytes is 0';
  if (!(m.expiresAt > m.issuedAt)) return 'expires-at not after issued-at';
  if (m.expiresAt - m.issuedAt > MAX_MANIFEST_TTL_MS) return 'validity window longer than 7 days';
  return null;
}

/** terms, terms digest, reference and manifest id of a decoded manifest body. */
export function manifestIdOf(body) {
  const v = body.item;
  const terms = encode([v[0], v[1], v[2], ...v.slice(4, 15)]);
  const termsDigest = taggedId(TAGS.manifestTerms, terms);
  const reference = encode([body.provider, body.name, termsDigest]);
  const id = taggedId(TAGS.manifestId, reference);
  return { terms, termsDigest, reference, id, handle: `${nodeIdText(body.provider)}/${body.name}` };
}

/**
 * Verifies a standalone manifest envelope (M1 then M2). Returns
 * { bytes, body, id, envelopeId, ... }; throws RuleError('M1'|'M2').
 */
export function verifyManifest(bytes) {
  let env;
  try {
    env = decodeEnvelope(bytes, LIMITS.manifest, manifestBody, 'manifest');
  } catch (e) {
    throw new RuleError('M1', `does not decode: ${e.message}`);
  }
  if (Buffer.compare(env.signer, env.body.provider) !== 0) throw new RuleError('M1', 'signer is not the provider');
  if (!verifyTagged(env.body.provider, TAGS.manifest, env.bodyBytes, env.signature)) {
    throw new RuleError('M1', 'invalid signature');
  }
  const problem = contentProblem(env.body);
  if (problem) throw new RuleError('M2', problem);
  const ids = manifestIdOf(env.body);
  return { ...env, ...ids, envelopeId: taggedId(TAGS.manifest, env.bodyBytes) };
}

/** Freshness at `now` (ms, BigInt): null when fresh, else why not. */
export function freshnessProblem(body, now) {
  if (now >= body.expiresAt) return 'expired';
  if (body.issuedAt > now + MAX_CLOCK_SKEW_MS) return 'not yet valid';
  return null;
}
