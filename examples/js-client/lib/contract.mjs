// The contract (spec/negotiation.md): building it, its hire id, and rules C1–C7 in their
// normative order.

import { encode, equalBytes } from './cbor.mjs';
import { TAGS, taggedId, verifyTagged } from './crypto.mjs';
import { decodeContract } from './types.mjs';
import { RuleError } from './manifest.mjs';

export const hireIdOf = (contractBytes) => taggedId(TAGS.contract, contractBytes);

/** Contract bytes from the three envelopes (each {bodyBytes, signer, signature}). */
export function buildContract(request, kind, proposal, accept) {
  const inline = (e) => [e.bodyBytes, e.signer, e.signature];
  return encode([1n, inline(request), BigInt(kind), inline(proposal), inline(accept)]);
}

/**
 * Verifies contract bytes against a verified manifest (`verifyManifest` result) with C1–C7 in
 * the order of negotiation.md. Returns the decoded contract with `hireId`, `client`,
 * `provider`, `terms`; throws RuleError.
 */
export function verifyContract(bytes, manifest) {
  let c;
  try {
    c = decodeContract(bytes);
  } catch (e) {
    throw new RuleError('C1', `the contract does not decode: ${e.message}`);
  }
  const client = c.request.body.client;
  const provider = manifest.body.provider;
  const requestId = taggedId(TAGS.request, c.request.bodyBytes);
  const proposalTag = c.kind === 0 ? TAGS.offer : TAGS.counter;
  const proposalId = taggedId(proposalTag, c.proposal.bodyBytes);
  const eq = equalBytes;

  if (!eq(c.request.signer, client)) throw new RuleError('C3', 'the request is not signed by its client');
  if (!eq(c.accept.signer, client) || !eq(c.accept.body.client, client)) {
    throw new RuleError('C3', 'the acceptance is not signed by (or does not name) the client');
  }
  if (!eq(c.proposal.signer, provider) || !eq(c.proposal.body.provider, provider)) {
    throw new RuleError('C4', "the proposal is not signed by (or does not name) the manifest's provider");
  }
  if (!verifyTagged(client, TAGS.request, c.request.bodyBytes, c.request.signature)) {
    throw new RuleError('C1', 'invalid request signature');
  }
  if (!verifyTagged(provider, proposalTag, c.proposal.bodyBytes, c.proposal.signature)) {
    throw new RuleError('C1', 'invalid proposal signature');
  }
  if (!verifyTagged(client, TAGS.accept, c.accept.bodyBytes, c.accept.signature)) {
    throw new RuleError('C1', 'invalid acceptance signature');
  }
  if (!eq(c.request.body.manifestId, manifest.id)) throw new RuleError('C2', 'the request names another manifest');
  if (!eq(c.proposal.body.requestId, requestId)) throw new RuleError('C5', 'the proposal answers another request');
  if (!eq(c.accept.body.requestId, requestId) || !eq(c.accept.body.proposalId, proposalId)) {
    throw new RuleError('C5', 'the acceptance names another request or proposal');
  }
  if (c.accept.body.createdAt > c.proposal.body.validUntil) throw new RuleError('C6', 'accepted after valid-until');
  const t = c.proposal.body.terms;
  if (t.price.currency !== manifest.body.pricing.currency) throw new RuleError('C7', "not in the manifest's currency");
  if (c.kind === 0) {
    const r = c.request.body;
    if (t.price.currency !== r.budget.currency) throw new RuleError('C7', "offer not in the budget's currency");
    if (t.price.amount > r.budget.amount) throw new RuleError('C7', 'offer above the budget');
    if (t.deadline > r.deadline) throw new RuleError('C7', "offer deadline after the request's");
  }
  return { ...c, hireId: hireIdOf(bytes), client, provider, terms: t, requestId, proposalId };
}
