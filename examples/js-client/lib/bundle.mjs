// The `.souk` bundle (spec/bundle.md): building one from a followed hire, and offline
// verification in the normative order of checks of receipts.md.

import { decode, encode } from './cbor.mjs';
import { bundle as bundleShape, bundleItem, LIMITS } from './types.mjs';
import { verifyManifest, RuleError } from './manifest.mjs';
import { verifyContract } from './contract.mjs';
import { ChainVerifier } from './chain.mjs';

export function buildBundle({ manifest, contract, entries, attestation = null, disclosures = [] }) {
  const ds = [...disclosures].sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
  return encode(bundleItem({ manifest, contract, entries, attestation, disclosures: ds }));
}

/**
 * Verifies bundle bytes. Returns { valid: true, state, verdict, entries, hireId } or
 * { valid: false, rule, entry, detail }.
 */
export function verifyBundle(bytes) {
  try {
    let b;
    try {
      b = bundleShape(decode(bytes, LIMITS.bundle));
    } catch (e) {
      throw new RuleError('B1', e.message);
    }
    const manifest = verifyManifest(b.manifest);
    const contract = verifyContract(b.contract, manifest);
    const chain = new ChainVerifier(contract, manifest);
    let structural = null;
    for (const e of b.entries) {
      try {
        chain.pushNext(e);
      } catch (err) {
        if (!(err instanceof RuleError)) throw err;
        structural = err;
        break;
      }
    }
    chain.checkSignatures();
    if (structural) throw structural;
    let verdict = null;
    if (b.attestation !== null) verdict = chain.verifyAttestation(b.attestation).body.verdict;
    let last = -1n;
    for (const d of b.disclosures) {
      const at = Number(d.seq);
      if (d.seq <= last) throw new RuleError('D1', 'disclosures not sorted or not unique', at);
      last = d.seq;
      const e = chain.entries[at];
      if (d.seq >= BigInt(chain.length) || !e) throw new RuleError('D1', 'no entry at this seq', at);
      if (e.body.commitment === null) throw new RuleError('D1', 'the entry has no commitment', at);
      if (!chain.opens(d)) throw new RuleError('D2', 'does not open the commitment', at);
    }
    return {
      valid: true,
      hireId: contract.hireId,
      state: chain.state,
      verdict: verdict === null ? null : ['accepted', 'disputed'][verdict],
      entries: chain.length,
    };
  } catch (e) {
    if (e instanceof RuleError) return { valid: false, rule: e.rule, entry: e.entry, detail: e.detail };
    throw e;
  }
}
