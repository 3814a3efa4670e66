// The client's encoder and verifiers against every applicable file of spec/vectors/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

import { decode, encode } from '../lib/cbor.mjs';
import {
  hex, unhex, hash, signingInput, taggedId, commit, sign, verify, publicKeyOf, isValidNodeId,
  nodeIdText, parseNodeIdText, peerIdText, TAGS,
} from '../lib/crypto.mjs';
import * as T from '../lib/types.mjs';
import { verifyManifest, manifestIdOf, RuleError } from '../lib/manifest.mjs';
import { jsonProfileProblem } from '../lib/json-profile.mjs';
import { verifyContract } from '../lib/contract.mjs';
import { verifyBundle } from '../lib/bundle.mjs';
import { verifyProof } from '../lib/equivocation.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const VECTORS = path.resolve(here, '../../../spec/vectors');
const load = (f) => JSON.parse(readFileSync(path.join(VECTORS, f), 'utf8'));

test('encoding.json: decline envelopes and generic items', () => {
  const vs = load('encoding.json');
  assert.ok(vs.length > 0);
  for (const v of vs) {
    const bytes = unhex(v.bytes);
    let ok = true;
    try {
      if (v.object === 'decline') {
        const env = T.decodeEnvelope(bytes, T.LIMITS.negotiation, T.declineBody, 'decline');
        assert.equal(hex(encode(env.item)), v.bytes, v.name);
        // Valid ones are correctly signed too (each vector is re-signed).
        assert.ok(T.decodeEnvelope && verify(env.signer, signingInput(TAGS.decline, env.bodyBytes), env.signature), v.name);
      } else if (v.object === 'item') {
        decode(bytes);
      } else {
        assert.fail(`unknown object ${v.object}`);
      }
    } catch (e) {
      if (e.name !== 'DecodeError') throw e;
      ok = false;
    }
    assert.equal(ok, v.valid, `${v.name}: expected valid=${v.valid}`);
  }
});

const BODY = {
  manifest: [T.LIMITS.manifest, T.manifestBody],
  'hire-request': [T.LIMITS.negotiation, T.requestBody],
  offer: [T.LIMITS.negotiation, T.offerBody],
  counter: [T.LIMITS.negotiation, T.counterBody],
  decline: [T.LIMITS.negotiation, T.declineBody],
  accept: [T.LIMITS.negotiation, T.acceptBody],
  receipt: [T.LIMITS.entry, T.entryBody],
  attestation: [T.LIMITS.attestation, T.attestationBody],
};

test('signatures.json: bodies, signing inputs, ids, signatures, envelopes', () => {
  const vs = load('signatures.json');
  assert.ok(vs.length >= 14);
  for (const v of vs) {
    const what = `${v.object} ${v.id.slice(0, 8)}`;
    const body = unhex(v.body);
    const [limit, f] = BODY[v.object];
    const decoded = f(decode(body, limit));
    assert.equal(hex(encode(decoded.item ?? decode(body))), v.body, what);
    assert.equal(hex(signingInput(v.tag, body)), v.signing_input, what);
    assert.equal(hex(taggedId(v.tag, body)), v.envelope_id, what);
    const id = v.object === 'manifest' ? manifestIdOf(decoded).id : taggedId(v.tag, body);
    assert.equal(hex(id), v.id, what);
    const seed = unhex(v.signer_seed);
    const pub = publicKeyOf(seed);
    const sig = sign(seed, v.tag, body);
    assert.equal(hex(sig), v.signature, what);
    assert.ok(verify(pub, unhex(v.signing_input), sig), what);
    const flipped = unhex(v.signing_input);
    flipped[0] ^= 1;
    assert.equal(verify(pub, flipped, sig), false, `${what}: altered input must be invalid`);
    assert.equal(hex(encode([body, pub, sig])), v.envelope, what);
    const env = T.decodeEnvelope(unhex(v.envelope), limit, f, v.object);
    assert.equal(hex(env.signer), hex(pub), what);
  }
});

test('signatures-edge.json: signature validity and the key rule', () => {
  const vs = load('signatures-edge.json');
  assert.ok(vs.length > 0);
  for (const v of vs) {
    const key = unhex(v.public_key);
    assert.equal(isValidNodeId(key), v.key_valid, `${v.name}: key_valid`);
    assert.equal(verify(key, unhex(v.message), unhex(v.signature)), v.valid, `${v.name}: valid`);
  }
});

test('identity.json: keys, text forms and PeerIds', () => {
  const vs = load('identity.json');
  assert.ok(vs.length > 0);
  for (const v of vs) {
    const pub = publicKeyOf(unhex(v.seed));
    assert.equal(hex(pub), v.public_key);
    assert.equal(nodeIdText(pub), v.node_id);
    assert.equal(hex(parseNodeIdText(v.node_id)), v.public_key);
    assert.equal(peerIdText(pub), v.peer_id);
  }
});

test('identity-invalid.json: every invalid node id is rejected', () => {
  const vs = load('identity-invalid.json');
  assert.ok(vs.length > 0);
  for (const v of vs) {
    if (v.public_key !== null) assert.equal(isValidNodeId(unhex(v.public_key)), false, v.name);
    else assert.throws(() => parseNodeIdText(v.text), Error, v.name);
  }
});

test('commitment.json: salted commitments', () => {
  const vs = load('commitment.json');
  assert.ok(vs.length > 0);
  for (const v of vs) assert.equal(hex(commit(unhex(v.salt), unhex(v.payload))), v.commitment);
});

test('manifest-id.json: terms, digest, reference, handle, id, envelope id', () => {
  const vs = load('manifest-id.json');
  assert.ok(vs.length > 0);
  for (const v of vs) {
    const body = T.manifestBody(decode(unhex(v.body), T.LIMITS.manifest));
    const ids = manifestIdOf(body);
    assert.equal(hex(ids.terms), v.terms, v.name);
    assert.equal(hex(ids.termsDigest), v.terms_digest, v.name);
    assert.equal(hex(ids.reference), v.reference, v.name);
    assert.equal(ids.handle, v.handle, v.name);
    assert.equal(hex(ids.id), v.id, v.name);
    assert.equal(hex(taggedId(TAGS.manifest, unhex(v.body))), v.envelope_id, v.name);
  }
});

test('manifest-json.json: the JSON profile (J1–J7) and M1/M2 of each manifest', () => {
  const vs = load('manifest-json.json');
  assert.ok(vs.length > 0);
  for (const v of vs) {
    const problem = jsonProfileProblem(unhex(v.text_hex));
    assert.equal(problem === null, v.valid, `${v.name}: standalone check (${problem})`);
    let rule = null;
    try {
      verifyManifest(unhex(v.manifest));
    } catch (e) {
      if (!(e instanceof RuleError)) throw e;
      rule = e.rule;
    }
    assert.equal(rule, v.rule, `${v.name}: manifest rule`);
  }
});

test('contract.json: contracts pass C1–C7 and give their hire ids', () => {
  const vs = load('contract.json');
  assert.ok(vs.length > 0);
  for (const v of vs) {
    const m = verifyManifest(unhex(v.manifest));
    const c = verifyContract(unhex(v.contract), m);
    assert.equal(hex(c.hireId), v.hire_id, v.name);
  }
});

test('equivocation.json: proofs and the E-rule they break', () => {
  const vs = load('equivocation.json');
  assert.ok(vs.length > 0);
  for (const v of vs) {
    const r = verifyProof(unhex(v.proof));
    assert.equal(r.valid, v.valid, v.name);
    if (v.valid) assert.equal(r.seq, BigInt(v.seq), v.name);
    else assert.equal(r.rule, v.rule, v.name);
  }
});

test('bundles/index.json: every bundle gives its verdict, rule and entry', () => {
  const vs = load('bundles/index.json');
  assert.ok(vs.length > 0);
  for (const v of vs) {
    const r = verifyBundle(new Uint8Array(readFileSync(path.join(VECTORS, 'bundles', v.file))));
    assert.equal(r.valid, v.valid, `${v.file}: ${r.rule} ${r.detail ?? ''}`);
    if (v.valid) {
      assert.equal(r.state, v.state, v.file);
      assert.equal(r.verdict, v.verdict, v.file);
      assert.equal(r.entries, v.entries, v.file);
    } else {
      assert.equal(r.rule, v.rule, `${v.file}: ${r.detail}`);
      assert.equal(r.entry, v.entry, `${v.file}: ${r.detail}`);
    }
  }
});

test('hiring.md worked example: fetch, ok, accepted, receipts, cancel, error', () => {
  const h = new Uint8Array(32).fill(0x11);
  const fetch = encode(T.fetchCall(h, 7, 20000));
  assert.equal(fetch.length, 41);
  assert.equal(hex(fetch), `85010258${'20'}${'11'.repeat(32)}07194e20`);
  assert.equal(T.hireReply(decode(unhex('820105'))).name, 'ok');
  assert.equal(hex(T.hireReply(decode(unhex(`8301035820${'11'.repeat(32)}`))).hireId), '11'.repeat(32));
  const r = T.hireReply(decode(unhex('8501048080f6')));
  assert.deepEqual([r.name, r.entries.length, r.disclosures.length, r.output], ['receipts', 0, 0, null]);
  assert.equal(hex(encode(T.cancelCall(h, 'changed my mind'))), `8401045820${'11'.repeat(32)}6f6368616e676564206d79206d696e64`);
  const err = T.hireReply(decode(unhex('840106017822' + Buffer.from("only the hire's client may do this").toString('hex'))));
  assert.deepEqual([err.codeName, err.message], ['not-your-hire', "only the hire's client may do this"]);
  // A reply of a kind with the wrong arity, or an unknown kind, does not decode.
  assert.throws(() => T.hireReply(decode(unhex('83010500'))));
  assert.throws(() => T.hireReply(decode(unhex('820107'))));
});

test('discovery.md worked example: sync request', () => {
  assert.equal(hex(encode(T.syncRequest(null, 256))), '8301f6190100');
  assert.deepEqual(T.syncResponse(decode(unhex('830180f6'))), { manifests: [], next: null });
});

test('encoding.md and receipts.md examples: entry ids, signature, commitment', () => {
  const seed = unhex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60');
  const e0 = encode([1n, new Uint8Array(32).fill(0x11), 0n, new Uint8Array(32), 1700000000000n, [0n, new Uint8Array(32).fill(0x22)], null]);
  assert.equal(e0.length, 117);
  assert.equal(hex(taggedId(TAGS.receipt, e0)), '16ec05eaee37125887262c34aa8b9deb5969278379db71723c13815a643b33d6');
  assert.equal(hex(sign(seed, TAGS.receipt, e0)), '84336d361624341f04a041b2f5bd1b71cd9c4c0dd67d3aead0e3e75125e42e71'
    + '92f7674d33f2c55167846c413c0d08a0a3084aafd40af5969c693c4434346c02');
  const salt = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(hex(commit(salt, new TextEncoder().encode('call the CRM search tool'))), 'b2d4b6f3350e25ea37804c7dc68345adf44cd09b1766fc5a4dacedb59fc9b4df');
  assert.equal(hex(hash(new TextEncoder().encode('{"rows":2,"summary":"ok"}'))), '3674529b27079cf6df217c3e4dcd9608af3562311a2f95e65979412efb992854');
});

test('credentials.json: accept call (no grants), network-call entries, relay record', () => {
  const v = load('credentials.json');
  const plain = v.accept_calls.find((c) => c.credentials === 0);
  const item = decode(unhex(plain.call), T.LIMITS.call);
  assert.equal(hex(encode(T.acceptCall(item[2], item[3], item[4]))), plain.call);
  // The contract of the call is the file's contract, which verifies against its manifest.
  const m = verifyManifest(unhex(v.manifest));
  assert.equal(hex(verifyContract(item[2], m).hireId), v.hire_id);
  assert.ok(v.entries.length > 0);
  for (const e of v.entries) {
    const env = T.decodeEntryEnvelope(unhex(e.envelope));
    assert.equal(hex(env.bodyBytes), e.body, e.name);
    assert.equal(hex(taggedId(TAGS.receipt, env.bodyBytes)), e.id, e.name);
    assert.equal(['none', 'sealed', 'relayed'][env.body.kind.mode], e.mode, e.name);
  }
  const r = v.relay.record;
  const rec = T.decodeEnvelope(unhex(r.envelope), T.LIMITS.relayRecord, T.relayRecordBody, 'relay-record');
  assert.equal(hex(taggedId(r.tag, rec.bodyBytes)), r.id);
  assert.equal(hex(sign(unhex(r.signer_seed), r.tag, rec.bodyBytes)), r.signature);
});
