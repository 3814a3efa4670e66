// The client side of /souk/hire/1 (spec/hiring.md): find and verify the manifest
// (discovery.md search / sync), request, handle offer / counter / decline, sign the
// acceptance and verify the contract (C1–C7), store it, accept, follow the receipts with
// long-polls verifying every entry, disclosure and the output, answer questions, cancel,
// and settle with a countersigned attestation (A1–A4 checked locally first).

import { randomBytes } from 'node:crypto';
import { encode, equalBytes } from './cbor.mjs';
import { TAGS, taggedId, sign, verifyTagged, commit, hash, hex, nodeIdText } from './crypto.mjs';
import * as T from './types.mjs';
import { verifyManifest, freshnessProblem, RuleError } from './manifest.mjs';
import { buildContract, verifyContract, hireIdOf } from './contract.mjs';
import { ChainVerifier } from './chain.mjs';
import { buildProof } from './equivocation.mjs';
import { exchange, CallFailed, HIRE_PROTOCOL, SEARCH_PROTOCOL, SYNC_PROTOCOL } from './transport.mjs';

const HOUR_MS = 3600000n;
const VERDICTS = ['accepted', 'disputed'];
export const HIRE_TIMEOUT_MS = 40000; // reference HIRE_TIMEOUT
const DISCOVERY_TIMEOUT_MS = 10000;
export const FOLLOW_WAIT_MS = 20000; // reference follower wait-ms
const now = () => BigInt(Date.now());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const min = (a, b) => (a < b ? a : b);

/** A protocol-level end of the hire: the report says why. */
export class HireError extends Error {
  constructor(stage, msg, extra = {}) {
    super(`${stage}: ${msg}`);
    this.name = 'HireError';
    this.stage = stage;
    Object.assign(this, extra);
  }
}

/** `per-hire + per-hour × ceil(min(window, max-duration) / 1 h)`, saturating (hiring.md). */
export function quote(m, windowMs) {
  const w = min(windowMs, m.limits.maxDurationMs);
  const hours = (w + HOUR_MS - 1n) / HOUR_MS;
  const q = m.pricing.perHire + m.pricing.perHour * hours;
  const MAX = (1n << 64n) - 1n;
  return q > MAX ? MAX : q;
}

export class HireClient {
  /**
   * @param node    the libp2p node (transport.mjs startNode)
   * @param ma      the provider's multiaddr (with /p2p/)
   * @param provider the provider's NodeId (from its PeerId)
   * @param key     { seed, publicKey } of the client
   * @param store   a Store (store.mjs) or null
   * @param log     (event object) => void
   */
  constructor({ node, ma, provider, key, store = null, log = () => {} }) {
    Object.assign(this, { node, ma, provider, key, store, log });
    this.states = [];
  }

  state(s, extra = {}) {
    if (this.states[this.states.length - 1] !== s) this.states.push(s);
    this.log({ event: 'state', state: s, ...extra });
  }

  async call(message, timeoutMs = HIRE_TIMEOUT_MS) {
    const item = await exchange(this.node, this.ma, HIRE_PROTOCOL, message, T.LIMITS.reply, timeoutMs);
    try {
      return T.hireReply(item);
    } catch (e) {
      throw new CallFailed(`the reply is not a hire-reply: ${e.message}`, e);
    }
  }

  // ---- the manifest ----

  /**
   * Finds the signed manifest with id `manifestId` at the provider: /souk/search/1 with the
   * provider filter, then /souk/manifest-sync/1 pages. Verifies M1, M2, freshness and that it
   * is the provider's; returns the verifyManifest result.
   */
  async findManifest(manifestId) {
    const candidates = [];
    const tried = { search: null, sync: null };
    try {
      const req = T.searchRequest({ provider: nodeIdText(this.provider), limit: 100 });
      const item = await exchange(this.node, this.ma, SEARCH_PROTOCOL, req, T.LIMITS.discoveryResponse, DISCOVERY_TIMEOUT_MS);
      candidates.push(...T.searchResponse(item).manifests);
      tried.search = candidates.length;
    } catch (e) {
      tried.search = `failed: ${e.message}`;
    }
    let found = this.#pick(candidates, manifestId);
    if (!found) {
      // A full node serves sync too; ids are its cursor, so page until the id is passed.
      let after = null;
      tried.sync = 0;
      try {
        for (let page = 0; page < 4096 && !found; page++) {
          const item = await exchange(this.node, this.ma, SYNC_PROTOCOL, T.syncRequest(after, 256), T.LIMITS.discoveryResponse, DISCOVERY_TIMEOUT_MS);
          const r = T.syncResponse(item);
          tried.sync += r.manifests.length;
          found = this.#pick(r.manifests, manifestId);
          if (r.next === null || (after && Buffer.compare(r.next, after) <= 0)) break;
          after = r.next;
        }
      } catch (e) {
        tried.sync = `failed: ${e.message}`;
      }
    }
    if (!found) {
      throw new HireError('manifest', `the provider offers no valid manifest ${hex(manifestId)} (search: ${tried.search}, sync: ${tried.sync})`);
    }
    const fresh = freshnessProblem(found.body, now());
    if (fresh) throw new HireError('manifest', `the manifest is ${fresh}`);
    return found;
  }

  #pick(envelopes, manifestId) {
    let best = null;
    for (const bytes of envelopes) {
      let m;
      try {
        m = verifyManifest(bytes);
      } catch (e) {
        this.log({ event: 'manifest-rejected', rule: e.rule ?? null, detail: e.message });
        continue;
      }
      if (!equalBytes(m.id, manifestId) || !equalBytes(m.body.provider, this.provider)) continue;
      if (freshnessProblem(m.body, now())) continue;
      if (!best || m.body.seq > best.body.seq) best = m;
    }
    return best;
  }

  // ---- negotiation ----

  /**
   * Sends the request and handles the reply. Returns { proposal, kind } for an acceptable
   * offer or counter; throws HireError for a decline, an error, or unacceptable terms.
   */
  async negotiate(manifest, input, { maxPrice = null, windowMs = null } = {}) {
    const m = manifest.body;
    if (BigInt(input.length) > m.limits.maxInputBytes) {
      throw new HireError('request', `the input (${input.length} bytes) is larger than the agent accepts (${m.limits.maxInputBytes})`);
    }
    const window = windowMs === null ? m.limits.maxDurationMs : BigInt(windowMs);
    const max = maxPrice === null ? quote(m, window) : BigInt(maxPrice);
    const salt = new Uint8Array(randomBytes(32));
    const t = now();
    const body = {
      manifestId: manifest.id,
      client: this.key.publicKey,
      inputCommitment: commit(salt, input),
      inputSize: input.length,
      budget: { currency: m.pricing.currency, amount: min(max, m.pricing.perHire) },
      deadline: t + window,
      nonce: new Uint8Array(randomBytes(16)),
      createdAt: t,
    };
    const bodyBytes = encode(T.requestBodyItem(body));
    const request = { bodyBytes, signer: this.key.publicKey, signature: sign(this.key.seed, TAGS.request, bodyBytes) };
    const requestId = taggedId(TAGS.request, bodyBytes);
    this.state('requested', { request_id: hex(requestId), budget: `${body.budget.amount} ${body.budget.currency}`, max_price: `${max}` });

    const reply = await this.call(T.requestCall(encode([request.bodyBytes, request.signer, request.signature])));
    if (reply.name === 'error') {
      throw new HireError('request', `the provider answered error ${reply.codeName}: ${reply.message}`, { replyError: reply.codeName });
    }
    if (!['offer', 'counter', 'decline'].includes(reply.name)) {
      throw new HireError('request', `unexpected reply ${reply.name} to a request`);
    }
    const bodyFn = { offer: T.offerBody, counter: T.counterBody, decline: T.declineBody }[reply.name];
    const tag = { offer: TAGS.offer, counter: TAGS.counter, decline: TAGS.decline }[reply.name];
    let env;
    try {
      env = T.decodeEnvelope(reply.envelope, T.LIMITS.negotiation, bodyFn, reply.name);
    } catch (e) {
      throw new HireError('request', `the ${reply.name} does not decode: ${e.message}`);
    }
    if (!equalBytes(env.signer, m.provider) || !verifyTagged(m.provider, tag, env.bodyBytes, env.signature)) {
      throw new HireError('request', `the ${reply.name} is not validly signed by the manifest's provider`);
    }
    if (!equalBytes(env.body.provider, m.provider)) throw new HireError('request', `the ${reply.name} names another provider`);
    if (!equalBytes(env.body.requestId, requestId)) throw new HireError('request', `the ${reply.name} answers another request`);

    if (reply.name === 'decline') {
      const d = env.body;
      this.state('rejected', { reason: d.reasonName, message: d.message, current: d.current ? hex(d.current) : null });
      throw new HireError('request', `declined (${d.reasonName}): ${d.message}`, {
        declined: d.reasonName, current: d.current ? hex(d.current) : null,
      });
    }
    const p = env.body;
    this.state('negotiating', {
      proposal: reply.name, price: `${p.terms.price.amount} ${p.terms.price.currency}`,
      deadline: Number(p.terms.deadline), valid_until: Number(p.validUntil),
      ...(reply.name === 'counter' ? { reason: p.reason } : {}),
    });
    // Client policy (hiring.md): the manifest's currency, at most max-price, no later deadline.
    if (p.terms.price.currency !== m.pricing.currency) throw new HireError('negotiate', 'the proposal is in another currency');
    if (p.terms.price.amount > max) {
      throw new HireError('negotiate', `the proposal asks ${p.terms.price.amount}, above max-price ${max}: not accepted (it lapses)`);
    }
    if (p.terms.deadline > body.deadline) throw new HireError('negotiate', "the proposal's deadline is later than the request's");
    return { request, requestBody: body, requestId, salt, proposal: env, kind: reply.name === 'offer' ? 0 : 1 };
  }

  /** Signs the acceptance, builds and verifies the contract (C1–C7). */
  contract(manifest, neg) {
    const proposalTag = neg.kind === 0 ? TAGS.offer : TAGS.counter;
    const proposalId = taggedId(proposalTag, neg.proposal.bodyBytes);
    const createdAt = now();
    if (createdAt > neg.proposal.body.validUntil) throw new HireError('accept', 'the proposal lapsed before it could be accepted');
    const bodyBytes = encode(T.acceptBodyItem({ requestId: neg.requestId, proposalId, client: this.key.publicKey, createdAt }));
    const accept = { bodyBytes, signer: this.key.publicKey, signature: sign(this.key.seed, TAGS.accept, bodyBytes) };
    const bytes = buildContract(neg.request, neg.kind, neg.proposal, accept);
    try {
      return verifyContract(bytes, manifest);
    } catch (e) {
      throw new HireError('accept', `the contract does not verify: ${e.message}`);
    }
  }

  /** The accept call, with the reference's retries (250 / 500 / 1000 ms) when no reply comes. */
  async accept(contract, input, salt) {
    const call = T.acceptCall(contract.bytes, input, salt);
    let lastFailure = null;
    for (const pause of [250, 500, 1000]) {
      let reply;
      try {
        reply = await this.call(call);
      } catch (e) {
        if (!(e instanceof CallFailed)) throw e;
        lastFailure = e;
        await sleep(pause);
        continue;
      }
      if (reply.name === 'accepted' && equalBytes(reply.hireId, contract.hireId)) {
        this.state('accepted', { hire_id: hex(contract.hireId) });
        return true;
      }
      const why = reply.name === 'error' ? `error ${reply.codeName}: ${reply.message}` : `unexpected reply ${reply.name}`;
      throw new HireError('accept', `the provider did not take the contract (${why})`);
    }
    // No reply at all: the provider may have stored it; follow anyway (hiring.md).
    this.log({ event: 'accept-unanswered', detail: lastFailure?.message });
    return false;
  }

  // ---- following ----

  /**
   * Follows the receipts until the chain is terminal (and, for a completed hire, the output
   * is held). `answers` is a queue of JSON texts (bytes) for the agent's questions; with none
   * left the hire is canceled. Returns { chain, disclosures, output, questions }.
   */
  async follow(contract, manifest, { answers = [], acceptCall = null, deadlineMs = null, stored = null } = {}) {
    const chain = new ChainVerifier(contract, manifest);
    const disclosures = new Map(); // seq -> {seq, salt, payload}
    const questions = [];
    let output = null;
    // Resuming: the stored entries are verified again (the verifier starts from them).
    for (const [bytes, d] of stored?.entries ?? []) {
      const disc = d ? T.disclosure(d) : null;
      const r = chain.push(bytes, (body, seq) => {
        if (disc && !(body.commitment && equalBytes(commit(disc.salt, disc.payload), body.commitment))) {
          throw new RuleError('D2', 'a stored disclosure does not open its commitment', seq);
        }
      });
      if (!r.appended) throw new HireError('resume', 'the stored chain is not a chain');
      if (disc) disclosures.set(Number(disc.seq), disc);
      this.log({ event: 'entry', seq: r.seq, kind: chain.head.body.kind.name, id: hex(r.id), verified: true, stored: true });
      this.state(chain.state);
    }
    if (stored?.output && chain.head?.body.kind.name === 'completed'
      && equalBytes(hash(stored.output), chain.head.body.kind.outputHash)) output = stored.output;
    let backoff = 250;
    let gaps = 0;
    let resentAccept = false;
    let answeredSeq = -1;
    let canceled = false;
    const stopAt = deadlineMs === null ? null : Date.now() + deadlineMs;

    for (;;) {
      if (chain.terminal && (chain.head.body.kind.name !== 'completed' || output !== null)) break;
      if (stopAt !== null && Date.now() > stopAt) throw new HireError('follow', 'gave up: the local time limit passed', { chain });

      // A question is open and not answered yet: answer it (or cancel) before waiting.
      if (chain.state === 'input-required' && answeredSeq !== chain.length - 1 && !canceled) {
        const q = chain.head;
        const d = disclosures.get(Number(q.body.seq));
        const question = d ? parseJson(d.payload) : null;
        questions.push({ seq: Number(q.body.seq), question });
        this.log({ event: 'question', seq: Number(q.body.seq), question });
        const a = answers.shift();
        if (a !== undefined) {
          const r = await this.#retrying(T.answerCall(contract.hireId, a), 'answer');
          if (r.name !== 'ok') throw new HireError('answer', replyText(r), { chain });
          answeredSeq = chain.length - 1;
          this.log({ event: 'answered', seq: answeredSeq });
        } else {
          const r = await this.#retrying(T.cancelCall(contract.hireId, 'the client has no answer to give'), 'cancel');
          if (r.name !== 'ok') throw new HireError('cancel', replyText(r), { chain });
          canceled = true;
          this.log({ event: 'canceled', reason: 'no answer to give' });
        }
      }

      const completedNoOutput = chain.terminal; // here: completed without output
      const from = completedNoOutput ? chain.length - 1 : chain.length;
      if (completedNoOutput) await sleep(250);
      let reply;
      try {
        reply = await this.call(T.fetchCall(contract.hireId, from, FOLLOW_WAIT_MS), HIRE_TIMEOUT_MS);
      } catch (e) {
        if (!(e instanceof CallFailed)) throw e;
        this.log({ event: 'fetch-failed', detail: e.message, retry_ms: backoff });
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 30000);
        continue;
      }
      if (reply.name === 'error') {
        if (reply.codeName === 'unknown-hire' && chain.length === 0 && !resentAccept && acceptCall) {
          resentAccept = true;
          const r = await this.call(acceptCall).catch((e) => (e instanceof CallFailed ? null : Promise.reject(e)));
          if (r && !(r.name === 'accepted' && equalBytes(r.hireId, contract.hireId))) {
            throw new HireError('follow', `the provider never took the contract (${replyText(r)})`, { chain });
          }
          continue;
        }
        if (['unknown-hire', 'not-your-hire'].includes(reply.codeName)) {
          throw new HireError('follow', `the provider refuses to serve the hire (${replyText(reply)})`, { chain });
        }
        this.log({ event: 'fetch-error', detail: replyText(reply), retry_ms: backoff });
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 30000);
        continue;
      }
      if (reply.name !== 'receipts') {
        this.log({ event: 'fetch-unexpected', reply: reply.name });
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 30000);
        continue;
      }
      backoff = 250;

      // Verify the page entry by entry; store the verified prefix before acting on a failure.
      const page = [];
      let failure = null;
      let gap = false;
      for (const bytes of reply.entries) {
        let r;
        let opened = null;
        const gate = (body, seq) => {
          if (body.commitment === null) return;
          const d = reply.disclosures.find((x) => x.seq === body.seq);
          if (!d) return; // a missing disclosure is not an error
          if (!equalBytes(commit(d.salt, d.payload), body.commitment)) {
            throw new RuleError('D2', 'the disclosure does not open the commitment', seq);
          }
          opened = d;
        };
        try {
          r = chain.push(bytes, gate);
        } catch (e) {
          if (!(e instanceof RuleError)) throw e;
          const seq = peekSeq(bytes);
          if (e.rule === 'R5' && seq !== null && seq > BigInt(chain.length)) gap = true;
          else failure = e;
          break;
        }
        if (r.duplicate) continue;
        if (r.equivocation) {
          const proof = buildProof(r.equivocation.a, r.equivocation.b);
          this.store?.saveProof(contract.hireId, proof);
          throw new HireError('follow', `the provider equivocated at seq ${r.equivocation.seq}`, { chain, proof: hex(proof) });
        }
        const entry = chain.head;
        if (opened) disclosures.set(Number(opened.seq), opened);
        page.push({ entry, disclosure: opened });
        this.log({ event: 'entry', seq: Number(entry.body.seq), kind: entry.body.kind.name, id: hex(entry.id), verified: true, disclosed: !!opened });
        this.state(chain.state);
      }
      this.store?.appendEntries(contract.hireId, page);
      if (failure) throw new HireError('follow', `receipt verification failed: ${failure.message}`, { chain, rule: failure.rule, entry: failure.entry });
      if (gap) {
        gaps += 1;
        if (gaps > 3) throw new HireError('follow', 'R5: the entries keep skipping ahead', { chain, rule: 'R5' });
        await sleep(250);
        continue;
      }
      gaps = 0;

      const head = chain.head;
      if (head && head.body.kind.name === 'completed' && reply.output !== null && output === null) {
        if (!equalBytes(hash(reply.output), head.body.kind.outputHash)) {
          throw new HireError('follow', "the output's BLAKE3 is not the completed entry's output-hash", { chain });
        }
        output = reply.output;
        this.store?.saveOutput(contract.hireId, output);
        this.log({ event: 'output', bytes: output.length, hash_ok: true });
      }
    }
    return { chain, disclosures, output, questions };
  }

  async #retrying(call, what) {
    let backoff = 250;
    for (let i = 0; i < 6; i++) {
      try {
        const r = await this.call(call);
        if (r.name === 'error' && r.codeName === 'busy') {
          await sleep(backoff);
          backoff *= 2;
          continue;
        }
        return r;
      } catch (e) {
        if (!(e instanceof CallFailed)) throw e;
        this.log({ event: `${what}-failed`, detail: e.message });
        await sleep(backoff);
        backoff *= 2;
      }
    }
    throw new HireError(what, 'no reply after 6 attempts');
  }

  // ---- settlement ----

  /**
   * Signs the attestation over the terminal head (or takes the one stored earlier: a
   * settlement is made once and only re-delivered), checks A1–A4 against the verified chain,
   * stores it, and sends it.
   */
  async settle(chain, verdict, reason, stored = null) {
    let bytes = stored;
    if (!bytes) {
      const head = chain.head;
      const bodyBytes = encode(T.attestationBodyItem({
        hireId: chain.hireId, headSeq: head.body.seq, headId: head.id, verdict, reason, createdAt: now(),
      }));
      bytes = encode([bodyBytes, this.key.publicKey, sign(this.key.seed, TAGS.attestation, bodyBytes)]);
    }
    const att = chain.verifyAttestation(bytes); // A1–A4 against our own verified chain
    verdict = att.body.verdict;
    if (!stored) this.store?.saveAttestation(chain.hireId, bytes);
    let last = null;
    for (const pause of [250, 1000, 5000, 5000]) {
      try {
        const r = await this.call(T.settleCall(bytes));
        if (r.name === 'ok') {
          this.log({ event: 'settled', verdict: ['accepted', 'disputed'][verdict] });
          return { attestation: bytes, verdict: VERDICTS[verdict], result: 'ok' };
        }
        if (r.name === 'error' && r.codeName !== 'busy' && r.codeName !== 'internal') {
          return { attestation: bytes, verdict: VERDICTS[verdict], result: replyText(r) };
        }
        last = replyText(r);
      } catch (e) {
        if (!(e instanceof CallFailed)) throw e;
        last = e.message;
      }
      await sleep(pause);
    }
    return { attestation: bytes, verdict: VERDICTS[verdict], result: `not acknowledged: ${last}` };
  }
}

function replyText(r) {
  if (!r) return 'no reply';
  return r.name === 'error' ? `error ${r.codeName}: ${r.message}` : `reply ${r.name}`;
}

function parseJson(bytes) {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return { undecodable: hex(bytes) };
  }
}

/** The seq of an entry envelope that failed a rule (only to tell a gap from other R5). */
function peekSeq(bytes) {
  try {
    return T.decodeEntryEnvelope(bytes).body.seq;
  } catch {
    return null;
  }
}

export { hireIdOf };
