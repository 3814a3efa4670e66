// Typed decoding and encoding of every Souk structure this client uses: the Signed envelope,
// negotiation bodies and the contract (negotiation.md), the manifest body (manifest.md),
// receipt entries, attestations, disclosures (receipts.md), relay records (credentials.md),
// /souk/hire/1 calls and replies (hiring.md), search and sync messages (discovery.md) and
// the bundle (bundle.md). Decoders enforce rule 7 of encoding.md (types, arity, field
// limits, versions, codes, NodeId validity) on top of the generic decoder of cbor.mjs.

import { decode, encode, DecodeError } from './cbor.mjs';
import { nodeIdProblem } from './crypto.mjs';

const utf8len = (s) => Buffer.byteLength(s, 'utf8');
const U32_MAX = 0xffffffffn;

export const LIMITS = Object.freeze({
  manifest: 65536,
  negotiation: 4096,
  contract: 16384,
  entry: 8192,
  attestation: 2048,
  relayRecord: 3072,
  proof: 16896,
  disclosure: 1048576,
  input: 16777216,
  output: 16777216,
  answer: 1048576,
  call: 17825792,
  reply: 25165824,
  fetchEntries: 512,
  fetchWaitMs: 25000,
  discoveryRequest: 8192,
  discoveryResponse: 8388608,
  bundle: 268435456,
  bundleEntries: 1000000,
});

/** Limit of a standalone envelope: body limit + 128. */
export const envelopeLimit = (bodyLimit) => bodyLimit + 128;

// ---- field helpers (each throws DecodeError) ----

const fail = (reason, detail) => {
  throw new DecodeError(reason, 0, detail);
};

export function arr(v, n, what) {
  if (!Array.isArray(v)) fail('UnexpectedType', `${what}: expected an array`);
  if (n !== undefined && v.length !== n) fail('WrongArity', `${what}: ${v.length} items, expected ${n}`);
  return v;
}
export function uint(v, what) {
  if (typeof v !== 'bigint') fail('UnexpectedType', `${what}: expected a uint`);
  return v;
}
export function u32(v, what) {
  uint(v, what);
  if (v > U32_MAX) fail('TooLarge', `${what}: above 2^32-1`);
  return v;
}
export function bstr(v, max, what) {
  if (!(v instanceof Uint8Array)) fail('UnexpectedType', `${what}: expected a byte string`);
  if (max !== undefined && v.length > max) fail('TooLarge', `${what}: ${v.length} > ${max} bytes`);
  return v;
}
export function fixed(v, n, what) {
  if (!(v instanceof Uint8Array)) fail('UnexpectedType', `${what}: expected a byte string`);
  if (v.length !== n) fail('WrongLength', `${what}: ${v.length} bytes, expected ${n}`);
  return v;
}
export const hash32 = (v, what) => fixed(v, 32, what);
export function tstr(v, max, what) {
  if (typeof v !== 'string') fail('UnexpectedType', `${what}: expected a text string`);
  if (max !== undefined && utf8len(v) > max) fail('TooLarge', `${what}: longer than ${max} bytes`);
  return v;
}
export function version(v, what) {
  uint(v, what);
  if (v !== 1n) fail('UnknownVersion', `${what}: version ${v}`);
  return v;
}
export function code(v, max, what) {
  uint(v, what);
  if (v > BigInt(max)) fail('UnknownCode', `${what}: ${v}`);
  return Number(v);
}
export function nodeId(v, what) {
  fixed(v, 32, what);
  const p = nodeIdProblem(v);
  if (p) fail('InvalidKey', `${what}: ${p}`);
  return v;
}
export function list(v, max, f, what) {
  arr(v, undefined, what);
  if (v.length > max) fail('TooLarge', `${what}: ${v.length} > ${max} items`);
  return v.map((x, i) => f(x, `${what}[${i}]`));
}
const orNull = (f) => (v, ...rest) => (v === null ? null : f(v, ...rest));
function bool(v, what) {
  if (v !== true && v !== false) fail('UnexpectedType', `${what}: expected a bool`);
  return v;
}

/** Decodes `bytes` within `limit` and applies the typed decoder `f` to the item. */
export function decodeAs(bytes, limit, f) {
  return f(decode(bytes, limit));
}

// ---- the Signed envelope ----

/**
 * A Signed<T> envelope given as its decoded array (inline) — the body bytes are decoded
 * separately with their own limit by `bodyFn`.
 */
export function envelopeFromItem(v, bodyLimit, bodyFn, what) {
  arr(v, 3, what);
  const bodyBytes = bstr(v[0], bodyLimit, `${what}.body`);
  const signer = fixed(v[1], 32, `${what}.signer`);
  const signature = fixed(v[2], 64, `${what}.signature`);
  const body = bodyFn(decode(bodyBytes, bodyLimit));
  return { bodyBytes, signer, signature, body, item: v };
}

/** A standalone (wrapped) envelope: bytes of at most body limit + 128. */
export function decodeEnvelope(bytes, bodyLimit, bodyFn, what) {
  const item = decode(bytes, envelopeLimit(bodyLimit));
  const env = envelopeFromItem(item, bodyLimit, bodyFn, what);
  env.bytes = bytes;
  return env;
}

export const envelopeItem = (bodyBytes, signer, signature) => [bodyBytes, signer, signature];

// ---- negotiation.md ----

export function price(v, what = 'price') {
  arr(v, 2, what);
  return { currency: tstr(v[0], 12, `${what}.currency`), amount: uint(v[1], `${what}.amount`) };
}
export const priceItem = (p) => [p.currency, BigInt(p.amount)];

export function terms(v, what = 'terms') {
  arr(v, 2, what);
  return { price: price(v[0], `${what}.price`), deadline: uint(v[1], `${what}.deadline`) };
}
export const termsItem = (t) => [priceItem(t.price), BigInt(t.deadline)];

export function requestBody(v) {
  arr(v, 9, 'hire-request');
  version(v[0], 'hire-request');
  return {
    manifestId: hash32(v[1], 'manifest-id'),
    client: nodeId(v[2], 'client'),
    inputCommitment: hash32(v[3], 'input-commitment'),
    inputSize: uint(v[4], 'input-size'),
    budget: price(v[5], 'budget'),
    deadline: uint(v[6], 'deadline'),
    nonce: fixed(v[7], 16, 'nonce'),
    createdAt: uint(v[8], 'created-at'),
  };
}
export const requestBodyItem = (r) => [
  1n, r.manifestId, r.client, r.inputCommitment, BigInt(r.inputSize), priceItem(r.budget),
  BigInt(r.deadline), r.nonce, BigInt(r.createdAt),
];

export function offerBody(v) {
  arr(v, 6, 'offer');
  version(v[0], 'offer');
  return {
    requestId: hash32(v[1], 'request-id'),
    provider: nodeId(v[2], 'provider'),
    terms: terms(v[3]),
    validUntil: uint(v[4], 'valid-until'),
    createdAt: uint(v[5], 'created-at'),
  };
}

export function counterBody(v) {
  arr(v, 7, 'counter');
  version(v[0], 'counter');
  return {
    requestId: hash32(v[1], 'request-id'),
    provider: nodeId(v[2], 'provider'),
    terms: terms(v[3]),
    validUntil: uint(v[4], 'valid-until'),
    reason: tstr(v[5], 512, 'reason'),
    createdAt: uint(v[6], 'created-at'),
  };
}

export const DECLINE_REASONS = ['price', 'capacity', 'deadline', 'unknown-manifest', 'input-too-large', 'policy', 'superseded'];

export function declineBody(v) {
  arr(v, undefined, 'decline');
  if (v.length !== 6 && v.length !== 7) fail('WrongArity', `decline: ${v.length} items`);
  version(v[0], 'decline');
  const reason = code(v[3], 6, 'decline reason');
  if ((reason === 6) !== (v.length === 7)) fail('WrongArity', 'decline: `current` iff superseded');
  return {
    requestId: hash32(v[1], 'request-id'),
    provider: nodeId(v[2], 'provider'),
    reason,
    reasonName: DECLINE_REASONS[reason],
    message: tstr(v[4], 512, 'message'),
    createdAt: uint(v[5], 'created-at'),
    current: v.length === 7 ? hash32(v[6], 'current') : null,
  };
}

export function acceptBody(v) {
  arr(v, 5, 'accept');
  version(v[0], 'accept');
  return {
    requestId: hash32(v[1], 'request-id'),
    proposalId: hash32(v[2], 'proposal-id'),
    client: nodeId(v[3], 'client'),
    createdAt: uint(v[4], 'created-at'),
  };
}
export const acceptBodyItem = (a) => [1n, a.requestId, a.proposalId, a.client, BigInt(a.createdAt)];

/** contract = [1, request, kind, proposal, accept], envelopes inline. */
export function contract(v) {
  arr(v, 5, 'contract');
  version(v[0], 'contract');
  const kind = code(v[2], 1, 'proposal kind');
  const N = LIMITS.negotiation;
  return {
    request: envelopeFromItem(v[1], N, requestBody, 'request'),
    kind,
    proposal: envelopeFromItem(v[3], N, kind === 0 ? offerBody : counterBody, 'proposal'),
    accept: envelopeFromItem(v[4], N, acceptBody, 'accept'),
  };
}
export const decodeContract = (bytes) => ({ ...decodeAs(bytes, LIMITS.contract, contract), bytes });

// ---- manifest.md ----

function tool(v, what) {
  arr(v, 2, what);
  return { name: tstr(v[0], 64, `${what}.name`), description: tstr(v[1], 512, `${what}.description`) };
}
function injection(v, what) {
  arr(v, undefined, what);
  if (v.length === 0) fail('WrongArity', `${what}: empty`);
  const c = code(v[0], 2, `${what} code`);
  const arity = [3, 1, 2][c];
  if (v.length !== arity) fail('WrongArity', `${what}: ${v.length} items`);
  if (c === 0) return { kind: 'header', name: tstr(v[1], 64, `${what}.name`), prefix: tstr(v[2], 32, `${what}.prefix`) };
  if (c === 1) return { kind: 'basic' };
  return { kind: 'query', param: tstr(v[1], 64, `${what}.param`) };
}
const host = (v, what) => tstr(v, 259, what);
function slot(v, what) {
  arr(v, 3, what);
  return {
    name: tstr(v[0], 64, `${what}.name`),
    hosts: list(v[1], 64, host, `${what}.hosts`),
    injection: injection(v[2], `${what}.injection`),
  };
}

export function manifestBody(v) {
  arr(v, 17, 'manifest');
  version(v[0], 'manifest');
  const pr = arr(v[11], 3, 'pricing');
  const li = arr(v[12], 6, 'limits');
  return {
    provider: nodeId(v[1], 'provider'),
    name: tstr(v[2], 64, 'name'),
    seq: uint(v[3], 'seq'),
    capabilities: list(v[4], 32, (x, w) => tstr(x, 48, w), 'capabilities'),
    description: tstr(v[5], 4096, 'description'),
    inputSchema: tstr(v[6], 16384, 'input-schema'),
    outputSchema: tstr(v[7], 16384, 'output-schema'),
    tools: list(v[8], 64, tool, 'tools'),
    hosts: list(v[9], 64, host, 'hosts'),
    credentials: list(v[10], 16, slot, 'credentials'),
    pricing: {
      currency: tstr(pr[0], 12, 'pricing.currency'),
      perHire: uint(pr[1], 'per-hire'),
      perHour: uint(pr[2], 'per-hour'),
    },
    limits: {
      maxDurationMs: uint(li[0], 'max-duration-ms'),
      maxConcurrency: u32(li[1], 'max-concurrency'),
      maxInputBytes: uint(li[2], 'max-input-bytes'),
      memoryBytes: uint(li[3], 'memory-bytes'),
      maxProcesses: uint(li[4], 'max-processes'),
      isolation: code(li[5], 1, 'isolation'),
    },
    runtimeDigest: hash32(v[13], 'runtime-digest'),
    sealingKey: fixed(v[14], 32, 'sealing-key'),
    issuedAt: uint(v[15], 'issued-at'),
    expiresAt: uint(v[16], 'expires-at'),
    item: v,
  };
}

// ---- receipts.md ----

export const ENTRY_KINDS = [
  'started', 'decision', 'tool-call', 'network-call', 'input-requested', 'input-provided',
  'checkpoint', 'completed', 'failed', 'canceled', 'expired',
];
export const FAILURE_CODES = ['agent-crashed', 'protocol-violation', 'output-too-large', 'agent-error', 'internal', 'resume-failed'];
export const CANCELERS = ['client', 'provider'];
const KIND_ARITY = [2, 1, 2, 14, 1, 1, 2, 3, 4, 4, 3];

function usage(v, what = 'usage') {
  arr(v, 4, what);
  return {
    price: price(v[0], `${what}.price`),
    wallMs: uint(v[1], `${what}.wall-ms`),
    steps: uint(v[2], `${what}.steps`),
    networkCalls: uint(v[3], `${what}.network-calls`),
  };
}

export function entryKind(v) {
  arr(v, undefined, 'kind');
  if (v.length === 0) fail('WrongArity', 'kind: empty');
  const c = code(v[0], 10, 'entry kind');
  if (v.length !== KIND_ARITY[c]) fail('WrongArity', `kind ${ENTRY_KINDS[c]}: ${v.length} items`);
  const k = { code: c, name: ENTRY_KINDS[c] };
  switch (c) {
    case 0: k.runtimeDigest = hash32(v[1], 'runtime-digest'); break;
    case 2: k.tool = tstr(v[1], 512, 'tool'); break;
    case 3:
      Object.assign(k, {
        host: tstr(v[1], 259, 'host'),
        method: tstr(v[2], 16, 'method'),
        path: tstr(v[3], 2048, 'path'),
        status: u32(v[4], 'status'),
        requestBytes: uint(v[5], 'request-bytes'),
        responseBytes: uint(v[6], 'response-bytes'),
        requestHash: hash32(v[7], 'request-hash'),
        responseHash: hash32(v[8], 'response-hash'),
        durationMs: uint(v[9], 'duration-ms'),
        slot: orNull(tstr)(v[10], 64, 'slot'),
        mode: code(v[11], 2, 'call-mode'),
        denial: orNull(code)(v[12], 16, 'denial-code'),
        relayRecord: orNull(bstr)(v[13], 3200, 'relay-record'),
      });
      break;
    case 6: k.stateHash = hash32(v[1], 'state-hash'); break;
    case 7: k.outputHash = hash32(v[1], 'output-hash'); k.usage = usage(v[2]); break;
    case 8:
      k.failure = code(v[1], 5, 'failure code');
      k.failureName = FAILURE_CODES[k.failure];
      k.message = tstr(v[2], 512, 'message');
      k.usage = usage(v[3]);
      break;
    case 9:
      k.by = code(v[1], 1, 'canceler');
      k.byName = CANCELERS[k.by];
      k.reason = tstr(v[2], 512, 'reason');
      k.usage = usage(v[3]);
      break;
    case 10: k.deadline = uint(v[1], 'deadline'); k.usage = usage(v[2]); break;
    default: break;
  }
  return k;
}

export function entryBody(v) {
  arr(v, 7, 'entry');
  version(v[0], 'entry');
  return {
    hireId: hash32(v[1], 'hire-id'),
    seq: uint(v[2], 'seq'),
    prev: hash32(v[3], 'prev'),
    time: uint(v[4], 'time'),
    kind: entryKind(v[5]),
    commitment: orNull(hash32)(v[6], 'commitment'),
  };
}
export const decodeEntryEnvelope = (bytes) => decodeEnvelope(bytes, LIMITS.entry, entryBody, 'entry');

export function attestationBody(v) {
  arr(v, 7, 'attestation');
  version(v[0], 'attestation');
  return {
    hireId: hash32(v[1], 'hire-id'),
    headSeq: uint(v[2], 'head-seq'),
    headId: hash32(v[3], 'head-id'),
    verdict: code(v[4], 1, 'verdict'),
    reason: tstr(v[5], 512, 'reason'),
    createdAt: uint(v[6], 'created-at'),
  };
}
export const attestationBodyItem = (a) => [
  1n, a.hireId, BigInt(a.headSeq), a.headId, BigInt(a.verdict), a.reason, BigInt(a.createdAt),
];

export function relayRecordBody(v) {
  arr(v, 14, 'relay-record');
  version(v[0], 'relay-record');
  return {
    hireId: hash32(v[1], 'hire-id'),
    slot: tstr(v[2], 64, 'slot'),
    requestId: fixed(v[3], 16, 'request-id'),
    method: tstr(v[4], 16, 'method'),
    host: tstr(v[5], 259, 'host'),
    path: tstr(v[6], 2048, 'path'),
    status: u32(v[7], 'status'),
    requestBytes: uint(v[8], 'request-bytes'),
    responseBytes: uint(v[9], 'response-bytes'),
    requestHash: hash32(v[10], 'request-hash'),
    responseHash: hash32(v[11], 'response-hash'),
    startedAt: uint(v[12], 'started-at'),
    durationMs: uint(v[13], 'duration-ms'),
  };
}

export function disclosure(v, what = 'disclosure') {
  arr(v, 3, what);
  return {
    seq: uint(v[0], `${what}.seq`),
    salt: fixed(v[1], 32, `${what}.salt`),
    payload: bstr(v[2], LIMITS.disclosure, `${what}.payload`),
  };
}

/** equivocation-proof = [1, a, b] with wrapped entry envelopes. */
export function equivocationProof(v) {
  arr(v, 3, 'proof');
  version(v[0], 'proof');
  const a = bstr(v[1], envelopeLimit(LIMITS.entry), 'a');
  const b = bstr(v[2], envelopeLimit(LIMITS.entry), 'b');
  return { a: decodeEntryEnvelope(a), b: decodeEntryEnvelope(b) };
}

// ---- hiring.md: calls and replies ----

export const CALL = Object.freeze({ request: 0, accept: 1, fetch: 2, answer: 3, cancel: 4, settle: 5 });
export const REPLY = Object.freeze({ offer: 0, counter: 1, decline: 2, accepted: 3, receipts: 4, ok: 5, error: 6 });
export const REPLY_NAMES = ['offer', 'counter', 'decline', 'accepted', 'receipts', 'ok', 'error'];
export const CALL_ERRORS = ['unknown-hire', 'not-your-hire', 'bad-call', 'invalid-contract', 'unavailable', 'wrong-state', 'internal', 'busy'];

export const requestCall = (request) => [1n, 0n, request];
export function acceptCall(contractBytes, input, salt, credentials = []) {
  const c = [1n, 1n, contractBytes, input, salt];
  if (credentials.length > 0) c.push(credentials);
  return c;
}
export const fetchCall = (hireId, fromSeq, waitMs) => [1n, 2n, hireId, BigInt(fromSeq), BigInt(waitMs)];
export const answerCall = (hireId, answer) => [1n, 3n, hireId, answer];
export const cancelCall = (hireId, reason) => [1n, 4n, hireId, reason];
export const settleCall = (attestation) => [1n, 5n, attestation];

/** Decodes a hire-reply (hiring.md, Replies). */
export function hireReply(v) {
  arr(v, undefined, 'reply');
  if (v.length < 2) fail('WrongArity', 'reply: fewer than 2 items');
  version(v[0], 'reply');
  const kind = code(v[1], 6, 'reply kind');
  const arity = [3, 3, 3, 3, 5, 2, 4][kind];
  if (v.length !== arity) fail('WrongArity', `reply ${REPLY_NAMES[kind]}: ${v.length} items`);
  const r = { kind, name: REPLY_NAMES[kind] };
  switch (kind) {
    case 0: case 1: case 2: r.envelope = bstr(v[2], 8192, 'envelope'); break;
    case 3: r.hireId = hash32(v[2], 'hire-id'); break;
    case 4:
      r.entries = list(v[2], LIMITS.fetchEntries, (x, w) => bstr(x, 8320, w), 'entries');
      r.disclosures = list(v[3], LIMITS.fetchEntries, disclosure, 'disclosures');
      r.output = orNull(bstr)(v[4], LIMITS.output, 'output');
      break;
    case 6:
      // hiring.md's CDDL says `call-error = 0..6` but its table lists 7 `busy`: accept 0..7.
      r.code = code(v[2], 7, 'call-error');
      r.codeName = CALL_ERRORS[r.code];
      r.message = tstr(v[3], 1024, 'message');
      break;
    default: break;
  }
  return r;
}

// ---- discovery.md ----

export function searchRequest({ text = '', capabilities = [], maxPrice = null, currency = null, limit = 100, provider = null }) {
  const m = [1n, text, capabilities, maxPrice === null ? null : BigInt(maxPrice), currency, BigInt(limit)];
  if (provider !== null) m.push(provider);
  return m;
}
export function searchResponse(v) {
  arr(v, 2, 'search-response');
  version(v[0], 'search-response');
  return { manifests: list(v[1], 100, (x, w) => bstr(x, envelopeLimit(LIMITS.manifest), w), 'manifests') };
}
export const syncRequest = (after, limit) => [1n, after, BigInt(limit)];
export function syncResponse(v) {
  arr(v, 3, 'sync-response');
  version(v[0], 'sync-response');
  return {
    manifests: list(v[1], 256, (x, w) => bstr(x, envelopeLimit(LIMITS.manifest), w), 'manifests'),
    next: orNull(hash32)(v[2], 'next'),
  };
}

// ---- bundle.md ----

/** bundle = ["souk-bundle", 1, manifest, contract, entries, attestation, disclosures] (B1 only). */
export function bundle(v) {
  arr(v, 7, 'bundle');
  if (tstr(v[0], undefined, 'magic') !== 'souk-bundle') fail('UnexpectedType', 'magic');
  version(v[1], 'bundle');
  return {
    manifest: bstr(v[2], envelopeLimit(LIMITS.manifest), 'manifest'),
    contract: bstr(v[3], LIMITS.contract, 'contract'),
    entries: list(v[4], LIMITS.bundleEntries, (x, w) => bstr(x, envelopeLimit(LIMITS.entry), w), 'entries'),
    attestation: orNull(bstr)(v[5], envelopeLimit(LIMITS.attestation), 'attestation'),
    disclosures: list(v[6], LIMITS.bundleEntries, disclosure, 'disclosures'),
  };
}
export const bundleItem = (b) => [
  'souk-bundle', 1n, b.manifest, b.contract, b.entries, b.attestation, b.disclosures.map((d) => [BigInt(d.seq), d.salt, d.payload]),
];

export { encode, decode, bool };
