// The libp2p side (spec/discovery.md Transport, hiring.md Framing): a TCP + Noise + yamux
// node whose PeerId is the client's Souk key, and one-call-per-stream exchanges framed as
// u32be(len) || one canonical CBOR item.

import './polyfill.mjs';
import { createLibp2p } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys';
import { multiaddr } from '@multiformats/multiaddr';
import { decode, encode } from './cbor.mjs';
import { equalBytes } from './cbor.mjs';
import { peerIdBytes, nodeIdOfPeerIdBytes, unbase58 } from './crypto.mjs';

export const HIRE_PROTOCOL = '/souk/hire/1';
export const SEARCH_PROTOCOL = '/souk/search/1';
export const SYNC_PROTOCOL = '/souk/manifest-sync/1';

/** A call that got no (decodable) reply: the same as an unreachable provider. */
export class CallFailed extends Error {
  constructor(msg, cause) {
    super(msg, { cause });
    this.name = 'CallFailed';
  }
}

/**
 * Starts a dial-only libp2p node whose identity is the ed25519 `seed` (identity.md: the
 * PeerId is the identity multihash of the protobuf public key, so PeerId and NodeId are one
 * key). Checks that libp2p derived exactly that PeerId.
 */
export async function startNode(seed, publicKey) {
  const privateKey = await generateKeyPairFromSeed('Ed25519', seed);
  const node = await createLibp2p({
    privateKey,
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify({ protocolPrefix: 'ipfs', agentVersion: 'souk-js-client/0.1.0' }) },
  });
  if (!equalBytes(node.peerId.toMultihash().bytes, peerIdBytes(publicKey))) {
    await node.stop();
    throw new Error('libp2p derived another PeerId than identity.md specifies');
  }
  return node;
}

/** The provider's NodeId from a multiaddr ending in /p2p/<PeerId> (an ed25519 PeerId). */
export function providerOf(addr) {
  const ma = multiaddr(addr);
  const p2p = ma.getComponents().filter((c) => c.name === 'p2p').pop();
  if (!p2p) throw new Error('the provider address must end in /p2p/<PeerId>');
  const key = nodeIdOfPeerIdBytes(unbase58(p2p.value));
  if (!key) throw new Error('the provider PeerId is not an ed25519 identity PeerId');
  return { ma, key, peerId: p2p.value };
}

function toBytes(chunk) {
  return chunk instanceof Uint8Array ? chunk : chunk.subarray();
}

/**
 * One exchange: opens a stream of `protocol`, writes one frame, closes the write side, reads
 * one frame of at most `replyLimit` bytes (refused before reading it when longer) and
 * decodes it under the canonical rules with that limit. Throws CallFailed on any transport
 * or framing failure.
 */
export async function exchange(node, ma, protocol, message, replyLimit, timeoutMs) {
  const signal = AbortSignal.timeout(timeoutMs);
  const body = encode(message);
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, 4);
  let stream;
  try {
    stream = await node.dialProtocol(ma, protocol, { signal });
    if (!stream.send(frame)) await stream.onDrain({ signal });
    await stream.close({ signal });
    let want = null;
    let got = 0;
    const parts = [];
    for await (const chunk of stream) {
      if (signal.aborted) throw signal.reason;
      const b = toBytes(chunk);
      parts.push(b);
      got += b.length;
      if (want === null && got >= 4) {
        const head = concatParts(parts, 4);
        want = new DataView(head.buffer, head.byteOffset, 4).getUint32(0);
        if (want > replyLimit) throw new CallFailed(`reply frame of ${want} bytes exceeds the limit ${replyLimit}`);
      }
      if (want !== null && got > 4 + want) throw new CallFailed('bytes after the reply frame');
    }
    if (want === null || got !== 4 + want) throw new CallFailed('the reply ended inside its frame (no reply)');
    const all = concatParts(parts, got);
    try {
      return decode(all.subarray(4), replyLimit);
    } catch (e) {
      throw new CallFailed(`the reply does not decode: ${e.message}`, e);
    }
  } catch (e) {
    stream?.abort?.(e instanceof Error ? e : new Error(String(e)));
    if (e instanceof CallFailed) throw e;
    throw new CallFailed(`${protocol} call failed: ${e?.message ?? e}`, e);
  }
}

function concatParts(parts, n) {
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    const take = Math.min(p.length, n - o);
    out.set(p.subarray(0, take), o);
    o += take;
    if (o === n) break;
  }
  return out;
}
