// A scripted /souk/hire/1 provider for the client tests: it signs a manifest, serves it by
// /souk/search/1, answers request / accept / fetch / answer / cancel / settle, and can
// misbehave on purpose (tampered signature, wrong output, equivocation, gaps, a disclosure
// that does not open). Built on the client's own library (checked against spec/vectors).

import '../lib/polyfill.mjs';
import { createLibp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { encode, decode, equalBytes } from '../lib/cbor.mjs';
import { TAGS, taggedId, sign, publicKeyOf, commit, hash, peerIdText, nodeIdOfPeerIdBytes } from '../lib/crypto.mjs';
import * as T from '../lib/types.mjs';
import { verifyManifest } from '../lib/manifest.mjs';
import { verifyContract } from '../lib/contract.mjs';
import { ChainVerifier } from '../lib/chain.mjs';

const enc = new TextEncoder();
const SEED = new Uint8Array(32).fill(0x11);
const PUB = publicKeyOf(SEED);
const envelope = (tag, bodyItem) => {
  const body = encode(bodyItem);
  return { body, bytes: encode([body, PUB, sign(SEED, tag, body)]) };
};

/** A signed manifest of a small agent, fresh now. */
export function makeManifest({ perHire = 500000n, perHour = 0n } = {}) {
  const now = BigInt(Date.now());
  const body = [
    1n, PUB, 'fake-agent', 1n, ['csv'], 'A scripted agent for tests.',
    '{"type":"object"}', '{"type":"object"}', [['step', 'one step']], [], [],
    ['USD', perHire, perHour], [600000n, 4n, 1048576n, 0n, 0n, 0n],
    new Uint8Array(32).fill(0x22), new Uint8Array(32).fill(0x33), now - 1000n, now + 3600000n,
  ];
  return verifyManifest(envelope(TAGS.manifest, body).bytes);
}

async function readFrame(stream) {
  const parts = [];
  for await (const c of stream) parts.push(c instanceof Uint8Array ? c : c.subarray());
  const all = Buffer.concat(parts);
  return decode(new Uint8Array(all.subarray(4)));
}
function sendFrame(stream, item) {
  const body = encode(item);
  const f = new Uint8Array(4 + body.length);
  new DataView(f.buffer).setUint32(0, body.length);
  f.set(body, 4);
  stream.send(f);
  return stream.close();
}

/**
 * Starts the fake provider. `scenario`: 'honest' | 'tampered' | 'bad-output' | 'equivocate'
 * | 'gap' | 'question' | 'bad-disclosure'. Returns { addr, manifest, calls, stop }.
 */
export async function startFakeProvider(scenario = 'honest') {
  const manifest = makeManifest();
  const node = await createLibp2p({
    privateKey: await generateKeyPairFromSeed('Ed25519', SEED),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  });
  const calls = [];
  const hire = { contract: null, entries: [], disclosures: new Map(), output: null, answered: null, fetches: 0, attestation: null };
  const output = enc.encode('{"rows":1}');

  const append = (kindItem, { payload = null, time = null } = {}) => {
    const seq = hire.entries.length;
    const prev = seq === 0 ? new Uint8Array(32) : taggedId(TAGS.receipt, decode(hire.entries[seq - 1])[0]);
    const salt = new Uint8Array(32).fill(seq + 1);
    const commitment = payload ? commit(salt, payload) : null;
    const t = time ?? BigInt(Date.now()) + BigInt(seq);
    const e = envelope(TAGS.receipt, [1n, hire.contract.hireId, BigInt(seq), prev, t, kindItem, commitment]);
    hire.entries.push(e.bytes);
    if (payload) hire.disclosures.set(seq, [BigInt(seq), salt, payload]);
    return e.bytes;
  };
  const usage = (steps, wall) => [[hire.contract.terms.price.currency, hire.contract.terms.price.amount], wall, steps, 0n];
  const startedAt = () => decode(decode(hire.entries[0])[0])[4];
  const complete = (steps) => {
    const t = BigInt(Date.now()) + 10n;
    append([7n, hash(output), usage(steps, t - startedAt())], { time: t });
    hire.output = output;
  };

  await node.handle('/souk/search/1', async (stream) => {
    await readFrame(stream);
    await sendFrame(stream, [1n, [manifest.bytes]]);
  });
  await node.handle('/souk/hire/1', async (stream, connection) => {
    const call = await readFrame(stream);
    const kind = Number(call[1]);
    calls.push(['request', 'accept', 'fetch', 'answer', 'cancel', 'settle'][kind]);
    const caller = nodeIdOfPeerIdBytes(connection.remotePeer.toMultihash().bytes);
    const reply = (item) => sendFrame(stream, item);
    if (kind === 0) {
      const req = T.decodeEnvelope(call[2], T.LIMITS.negotiation, T.requestBody, 'request');
      const now = BigInt(Date.now());
      const offer = envelope(TAGS.offer, [1n, taggedId(TAGS.request, req.bodyBytes), PUB,
        [[manifest.body.pricing.currency, manifest.body.pricing.perHire], req.body.deadline], now + 60000n, now]);
      return reply([1n, 0n, offer.bytes]);
    }
    if (kind === 1) {
      hire.contract = verifyContract(call[2], manifest);
      hire.chain = new ChainVerifier(hire.contract, manifest);
      append([0n, manifest.body.runtimeDigest]);
      if (scenario === 'question') append([4n], { payload: enc.encode('{"question":{"text":"which column?"},"type":"question"}') });
      else {
        append([1n], { payload: enc.encode('{"text":"thinking","type":"decision"}') });
        complete(1n);
      }
      return reply([1n, 3n, hire.contract.hireId]);
    }
    if (!hire.contract) return reply([1n, 6n, 0n, 'unknown hire']);
    if (!equalBytes(caller, hire.contract.client)) return reply([1n, 6n, 1n, 'not your hire']);
    if (kind === 2) {
      hire.fetches += 1;
      const from = Number(call[3]);
      let entries = hire.entries.slice(from);
      let disclosures = entries.map((_, i) => hire.disclosures.get(from + i)).filter(Boolean);
      let out = hire.output && entries.length && from + entries.length === hire.entries.length ? hire.output : null;
      if (scenario === 'tampered' && from <= 1 && entries.length > 1 - from) {
        const env = decode(entries[1 - from]);
        env[2] = new Uint8Array(env[2]);
        env[2][0] ^= 1;
        entries = [...entries];
        entries[1 - from] = encode(env);
      }
      if (scenario === 'bad-output' && out) out = enc.encode('{"rows":2}');
      if (scenario === 'bad-disclosure') disclosures = disclosures.map(([s, salt]) => [s, salt, enc.encode('tampered')]);
      if (scenario === 'gap' && hire.fetches === 1) {
        entries = entries.slice(1);
        disclosures = [];
        out = null;
      }
      if (scenario === 'equivocate' && hire.fetches === 1) {
        entries = entries.slice(0, 2);
        out = null;
      } else if (scenario === 'equivocate') {
        // Another, validly signed entry at seq 1.
        const body = decode(decode(hire.entries[1])[0]);
        body[4] += 1n;
        const e = envelope(TAGS.receipt, body);
        entries = [e.bytes];
        disclosures = [];
        out = null;
      }
      return reply([1n, 4n, entries, disclosures, out]);
    }
    if (kind === 3) {
      hire.answered = Buffer.from(call[3]).toString('utf8');
      append([5n], { payload: enc.encode(`{"answer":${hire.answered},"type":"answer"}`) });
      complete(0n);
      return reply([1n, 5n]);
    }
    if (kind === 4) {
      const t = BigInt(Date.now());
      append([9n, 0n, call[3], usage(0n, t - startedAt())], { time: t });
      return reply([1n, 5n]);
    }
    if (kind === 5) {
      for (const e of hire.entries) hire.chain.push(e);
      hire.chain.verifyAttestation(call[2]);
      hire.attestation = call[2];
      return reply([1n, 5n]);
    }
    return undefined;
  });
  await node.start();
  const addr = node.getMultiaddrs()[0].toString();
  return { addr, manifest, calls, hire, peerId: peerIdText(PUB), stop: () => node.stop() };
}
