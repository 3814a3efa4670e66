// Equivocation proofs (spec/receipts.md, Equivocation proofs): building one and rules E1–E3.

import { decode, encode, equalBytes } from './cbor.mjs';
import { TAGS, taggedId, verifyTagged, isValidNodeId } from './crypto.mjs';
import { equivocationProof, LIMITS } from './types.mjs';

/** The proof bytes for two wrapped entry envelopes already ordered by id. */
export const buildProof = (a, b) => encode([1n, a, b]);

/** Verifies proof bytes: { valid: true, signer, hireId, seq } or { valid: false, rule, detail }. */
export function verifyProof(bytes) {
  const no = (rule, detail) => ({ valid: false, rule, detail });
  let p;
  try {
    p = equivocationProof(decode(bytes, LIMITS.proof));
  } catch (e) {
    return no('E1', `does not decode: ${e.message}`);
  }
  const { a, b } = p;
  if (!equalBytes(a.signer, b.signer)) return no('E1', 'signed by different keys');
  if (!isValidNodeId(a.signer)) return no('E1', 'the signer is not a valid NodeId');
  if (!verifyTagged(a.signer, TAGS.receipt, a.bodyBytes, a.signature)) return no('E1', "a's signature is invalid");
  if (!verifyTagged(b.signer, TAGS.receipt, b.bodyBytes, b.signature)) return no('E1', "b's signature is invalid");
  if (!equalBytes(a.body.hireId, b.body.hireId) || a.body.seq !== b.body.seq) return no('E2', 'different hire or seq');
  const ia = taggedId(TAGS.receipt, a.bodyBytes);
  const ib = taggedId(TAGS.receipt, b.bodyBytes);
  if (Buffer.compare(ia, ib) >= 0) return no('E3', 'not ordered by id, or the same entry');
  return { valid: true, signer: a.signer, hireId: a.body.hireId, seq: a.body.seq };
}
