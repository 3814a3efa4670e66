// Receipt chains (spec/receipts.md, spec/hire-lifecycle.md): the hire state machine, the
// incremental ChainVerifier (R1–R10, duplicates, equivocation), attestations (A1–A4) and
// disclosures (D1, D2).

import { equalBytes } from './cbor.mjs';
import { TAGS, taggedId, verifyTagged, commit } from './crypto.mjs';
import {
  decodeEntryEnvelope, decodeEnvelope, relayRecordBody, attestationBody, LIMITS, ENTRY_KINDS,
} from './types.mjs';
import { RuleError } from './manifest.mjs';

export const TERMINAL = new Set(['completed', 'failed', 'canceled', 'rejected', 'expired']);
const STEPS = new Set(['decision', 'tool-call', 'network-call', 'checkpoint']);

/** The state after an entry of kind `kind` in `state`, or null if illegal (R8). */
export function nextState(state, kind) {
  if (TERMINAL.has(state)) return null;
  if (STEPS.has(kind)) return state === 'working' ? state : null;
  const live = ['accepted', 'working', 'input-required'];
  switch (kind) {
    case 'started': return state === 'accepted' ? 'working' : null;
    case 'input-requested': return state === 'working' ? 'input-required' : null;
    case 'input-provided': return state === 'input-required' ? 'working' : null;
    case 'completed': return state === 'working' ? 'completed' : null;
    case 'failed': return live.includes(state) ? 'failed' : null;
    case 'canceled': return live.includes(state) ? 'canceled' : null;
    case 'expired': return live.includes(state) ? 'expired' : null;
    default: return null;
  }
}

const entryId = (env) => taggedId(TAGS.receipt, env.bodyBytes);

/** Allowed hosts for a call: the slot's, or without a slot the manifest's and every slot's. */
function hostAllowed(manifest, slotName, host) {
  if (slotName !== null) {
    const s = manifest.credentials.find((x) => x.name === slotName);
    return !!s && s.hosts.includes(host);
  }
  return manifest.hosts.includes(host) || manifest.credentials.some((s) => s.hosts.includes(host));
}

/**
 * Holds the chain context (from a verified contract and its manifest) and the verified
 * entries. `push` is the incremental verification of receipts.md; `pushNext` the strict
 * next-entry check used for bundles.
 */
export class ChainVerifier {
  constructor(contract, manifest) {
    this.hireId = contract.hireId;
    this.provider = contract.provider;
    this.client = contract.client;
    this.deadline = contract.terms.deadline;
    this.price = contract.terms.price;
    this.manifest = manifest.body;
    this.entries = []; // { env, body, id }
    this.state = 'accepted';
    this.startedTime = null;
    this.steps = 0n;
    this.networkCalls = 0n;
    this.relayIds = [];
  }

  get length() {
    return this.entries.length;
  }
  get head() {
    return this.entries.length ? this.entries[this.entries.length - 1] : null;
  }
  get terminal() {
    return TERMINAL.has(this.state);
  }

  /**
   * Incremental push (receipts.md, ChainVerifier). Returns {appended}, {duplicate} or
   * {equivocation: {a, b}}; throws RuleError (with the entry position). `gate(body, seq)`,
   * if given, is called after every rule passed and before the entry is appended: if it
   * throws, nothing is appended (used to check the entry's disclosure first).
   */
  push(bytes, gate = null) {
    const pos = this.entries.length;
    let env;
    try {
      env = decodeEntryEnvelope(bytes);
    } catch (e) {
      throw new RuleError('R1', `does not decode: ${e.message}`, pos);
    }
    const s = env.body.seq;
    const at = s < BigInt(pos) ? Number(s) : pos;
    if (!equalBytes(env.signer, this.provider)) throw new RuleError('R2', 'not signed by the provider', at);
    if (s < BigInt(pos)) {
      const held = this.entries[Number(s)];
      const id = entryId(env);
      if (equalBytes(id, held.id)) return { duplicate: true, seq: Number(s) };
      if (!verifyTagged(this.provider, TAGS.receipt, env.bodyBytes, env.signature)) {
        throw new RuleError('R3', 'invalid signature', Number(s));
      }
      if (!equalBytes(env.body.hireId, this.hireId)) throw new RuleError('R4', 'names another hire', Number(s));
      const pair = [{ bytes: held.env.bytes, id: held.id }, { bytes, id }];
      pair.sort((x, y) => Buffer.compare(x.id, y.id));
      return { equivocation: { seq: Number(s), a: pair[0].bytes, b: pair[1].bytes } };
    }
    return this.#append(env, pos, { gate });
  }

  /** Strict next-entry check (bundles): decode, then every rule at position `pos`. */
  pushNext(bytes) {
    const pos = this.entries.length;
    let env;
    try {
      env = decodeEntryEnvelope(bytes);
    } catch (e) {
      throw new RuleError('R1', `does not decode: ${e.message}`, pos);
    }
    if (!equalBytes(env.signer, this.provider)) throw new RuleError('R2', 'not signed by the provider', pos);
    return this.#append(env, pos, { deferSignature: true });
  }

  #append(env, pos, { deferSignature = false, gate = null } = {}) {
    const e = env.body;
    const R = (rule, msg) => new RuleError(rule, msg, pos);
    if (!equalBytes(e.hireId, this.hireId)) throw R('R4', 'names another hire');
    if (e.seq !== BigInt(pos)) throw R('R5', `seq ${e.seq}, expected ${pos}`);
    const head = this.head;
    const prev = head ? head.id : new Uint8Array(32);
    if (!equalBytes(e.prev, prev)) throw R('R6', 'prev is not the id of the entry before');
    if (head && e.time < head.body.time) throw R('R7', 'time decreases');
    const kind = e.kind.name;
    const next = nextState(this.state, kind);
    if (next === null) throw R('R8', `${kind} is illegal in state ${this.state}`);
    this.#checkFields(e, R);
    let relayId = null;
    if (kind === 'network-call') relayId = this.#checkCredentials(e.kind, R);
    if (!deferSignature && !verifyTagged(this.provider, TAGS.receipt, env.bodyBytes, env.signature)) {
      throw R('R3', 'invalid signature');
    }
    gate?.(e, pos);
    const id = entryId(env);
    this.entries.push({ env, body: e, id, bytes: env.bytes });
    this.state = next;
    if (kind === 'started') this.startedTime = e.time;
    if (kind === 'decision' || kind === 'tool-call') this.steps += 1n;
    if (kind === 'network-call') this.networkCalls += 1n;
    if (relayId) this.relayIds.push(relayId);
    return { appended: true, seq: pos, id, state: next };
  }

  /** R9: field rules. */
  #checkFields(e, R) {
    const k = e.kind;
    if (k.name === 'started' && !equalBytes(k.runtimeDigest, this.manifest.runtimeDigest)) {
      throw R('R9', "started names another runtime digest than the manifest's");
    }
    if (k.name === 'expired' && k.deadline !== this.deadline) throw R('R9', "expired names another deadline than the contract's");
    if (k.usage) {
      const u = k.usage;
      const wall = this.startedTime === null ? 0n : e.time - this.startedTime;
      if (u.price.currency !== this.price.currency || u.price.amount !== this.price.amount) throw R('R9', 'usage price is not the agreed price');
      if (u.wallMs !== wall) throw R('R9', `usage wall-ms ${u.wallMs}, the chain shows ${wall}`);
      if (u.steps !== this.steps) throw R('R9', `usage steps ${u.steps}, the chain shows ${this.steps}`);
      if (u.networkCalls !== this.networkCalls) throw R('R9', `usage network-calls ${u.networkCalls}, the chain shows ${this.networkCalls}`);
    }
    if (k.name === 'tool-call' && k.tool.length === 0) throw R('R9', 'empty tool name');
    if (k.name === 'network-call') {
      const denied = k.denial !== null;
      if (!/^[\x21-\x40\x5b-\x7e]*$/.test(k.host)) throw R('R9', 'bad network-call host');
      if (k.host === '' && !denied) throw R('R9', 'empty host');
      if (!/^[A-Z]*$/.test(k.method)) throw R('R9', 'bad method');
      if (k.method === '' && !denied) throw R('R9', 'empty method');
      if (k.path === '') {
        if (!denied && k.method !== 'CONNECT') throw R('R9', 'empty path');
      } else if (!k.path.startsWith('/') || k.path.includes('?') || k.path.includes('#')) {
        throw R('R9', 'bad path');
      }
      if (k.status > 999n) throw R('R9', 'status above 999');
    }
  }

  /** R10: credential rules of a network-call; returns the relay record id, if any. */
  #checkCredentials(k, R) {
    const m = this.manifest;
    if ((k.mode === 0) !== (k.slot === null)) throw R('R10', 'mode none exactly when there is no slot');
    if (k.slot !== null && !m.credentials.some((s) => s.name === k.slot)) throw R('R10', `unknown slot ${k.slot}`);
    if (k.denial !== null) {
      if (k.status !== 0n || k.relayRecord !== null) throw R('R10', 'a denial has status 0 and no relay record');
    } else {
      if (k.status < 100n || k.status > 999n) throw R('R10', 'a call that went through has an HTTP status');
      if (!hostAllowed(m, k.slot, k.host)) throw R('R10', `host ${k.host} is not listed`);
      if (k.mode === 2 && k.relayRecord === null) throw R('R10', 'relayed without a relay record');
    }
    if (k.relayRecord === null) return null;
    if (k.mode !== 2) throw R('R10', 'relay record on a call that was not relayed');
    let rec;
    try {
      rec = decodeEnvelope(k.relayRecord, LIMITS.relayRecord, relayRecordBody, 'relay-record');
    } catch (e) {
      throw R('R10', `relay record does not decode: ${e.message}`);
    }
    if (!equalBytes(rec.signer, this.client)) throw R('R10', 'relay record not signed by the client');
    if (!verifyTagged(this.client, TAGS.relayRecord, rec.bodyBytes, rec.signature)) throw R('R10', 'invalid relay record signature');
    const b = rec.body;
    if (!equalBytes(b.hireId, this.hireId)) throw R('R10', 'relay record of another hire');
    const same = b.slot === k.slot && b.method === k.method && b.host === k.host && b.path === k.path
      && b.status === k.status && b.requestBytes === k.requestBytes && b.responseBytes === k.responseBytes
      && equalBytes(b.requestHash, k.requestHash) && equalBytes(b.responseHash, k.responseHash);
    if (!same) throw R('R10', 'relay record does not describe this call');
    const id = taggedId(TAGS.relayRecord, rec.bodyBytes);
    if (this.relayIds.some((x) => equalBytes(x, id))) throw R('R10', 'relay record reused');
    return id;
  }

  /** The signature pass (R3) over every held entry, in order (bundles). */
  checkSignatures(upTo = this.entries.length) {
    for (let i = 0; i < upTo; i++) {
      const { env } = this.entries[i];
      if (!verifyTagged(this.provider, TAGS.receipt, env.bodyBytes, env.signature)) {
        throw new RuleError('R3', 'invalid signature', i);
      }
    }
  }

  /** A1–A4 of an attestation envelope against this chain; returns the decoded attestation. */
  verifyAttestation(bytes) {
    let a;
    try {
      a = decodeEnvelope(bytes, LIMITS.attestation, attestationBody, 'attestation');
    } catch (e) {
      throw new RuleError('A1', `does not decode: ${e.message}`);
    }
    if (!equalBytes(a.signer, this.client)) throw new RuleError('A1', 'not signed by the client');
    if (!verifyTagged(this.client, TAGS.attestation, a.bodyBytes, a.signature)) throw new RuleError('A1', 'invalid signature');
    if (!equalBytes(a.body.hireId, this.hireId)) throw new RuleError('A2', 'names another hire');
    const head = this.head;
    if (!head || a.body.headSeq !== head.body.seq || !equalBytes(a.body.headId, head.id)) {
      throw new RuleError('A3', "the head is not the chain's last entry");
    }
    if (!this.terminal) throw new RuleError('A4', 'the head is not terminal');
    return a;
  }

  /** Whether a disclosure opens the commitment of the held entry at its seq (D2). */
  opens(d) {
    const e = this.entries[Number(d.seq)];
    return !!e && e.body.commitment !== null && equalBytes(commit(d.salt, d.payload), e.body.commitment);
  }
}

export { ENTRY_KINDS };
