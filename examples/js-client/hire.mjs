#!/usr/bin/env node
// Hires an agent from a Souk provider over /souk/hire/1, verifies everything it receives,
// settles, and prints a JSON report. See README.md for options and exit codes.

import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { hex, unhex, publicKeyOf, nodeIdText, peerIdText, taggedId, TAGS } from './lib/crypto.mjs';
import * as T from './lib/types.mjs';
import { verifyManifest, freshnessProblem } from './lib/manifest.mjs';
import { verifyContract } from './lib/contract.mjs';
import { buildBundle, verifyBundle } from './lib/bundle.mjs';
import { HireClient, HireError } from './lib/client.mjs';
import { startNode, providerOf } from './lib/transport.mjs';
import { Store } from './lib/store.mjs';

const USAGE = `usage: node hire.mjs --provider MULTIADDR (--manifest ID_HEX --input FILE.json | --resume HIRE_ID)
  [--manifest-file FILE] [--max-price MICRO_UNITS] [--window-ms MS] [--answer JSON]... [--key FILE]
  [--out REPORT.json] [--bundle FILE.souk] [--state-dir DIR] [--verdict auto|accepted|disputed]
  [--reason TEXT] [--no-settle] [--quiet]`;

const EXIT = { ok: 0, failed: 1, usage: 2, unfinished: 3 };

function usage(msg) {
  process.stderr.write(`${msg}\n${USAGE}\n`);
  process.exit(EXIT.usage);
}

/** JSON for the report: BigInt as a number when safe, bytes as hex. */
function plain(v) {
  if (typeof v === 'bigint') return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return hex(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

function loadKey(file) {
  if (!file) return new Uint8Array(randomBytes(32));
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(text)) usage(`${file}: expected 64 lowercase hex digits (a 32-byte ed25519 seed)`);
    return unhex(text);
  }
  const seed = new Uint8Array(randomBytes(32));
  fs.writeFileSync(file, `${hex(seed)}\n`, { mode: 0o600 });
  return seed;
}

function parseJsonBytes(bytes, what) {
  try {
    JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (e) {
    usage(`${what} is not JSON: ${e.message}`);
  }
  return bytes;
}

/** The manifest named on the command line: from --manifest-file if it holds it, else the provider. */
async function loadManifest(client, id, file, log) {
  if (file && fs.existsSync(file)) {
    const m = verifyManifest(new Uint8Array(fs.readFileSync(file)));
    if (Buffer.compare(m.id, id) !== 0) usage(`${file} holds manifest ${hex(m.id)}, not ${hex(id)}`);
    if (Buffer.compare(m.body.provider, client.provider) !== 0) usage(`${file} is another provider's manifest`);
    const fresh = freshnessProblem(m.body, BigInt(Date.now()));
    if (fresh) throw new HireError('manifest', `the saved manifest is ${fresh}`);
    log({ event: 'manifest-loaded', file });
    return m;
  }
  const m = await client.findManifest(id);
  if (file) fs.writeFileSync(file, m.bytes);
  return m;
}

/** After a `superseded` decline: fetch and verify the current manifest, same provider and name. */
async function describeCurrent(client, old, currentHex) {
  try {
    const m = await client.findManifest(unhex(currentHex));
    if (m.body.name !== old.body.name) return { id: currentHex, problem: `it names another agent (${m.body.name})` };
    return plain({ id: currentHex, verified: 'M1 M2 fresh, same provider and name', seq: m.body.seq, pricing: m.body.pricing, limits: m.body.limits });
  } catch (e) {
    return { id: currentHex, problem: e.message };
  }
}

function entryReport(e, disclosure) {
  const k = { ...e.body.kind };
  delete k.code;
  const out = { seq: e.body.seq, kind: e.body.kind.name, id: e.id, time: e.body.time, verified: true, ...k };
  delete out.name;
  if (e.body.commitment) out.commitment = e.body.commitment;
  if (disclosure) {
    const text = Buffer.from(disclosure.payload).toString('utf8');
    try {
      out.disclosed = JSON.parse(text);
    } catch {
      out.disclosed = text;
    }
  }
  return plain(out);
}

async function main() {
  let args;
  try {
    ({ values: args } = parseArgs({
      options: {
        provider: { type: 'string' },
        manifest: { type: 'string' },
        'manifest-file': { type: 'string' },
        input: { type: 'string' },
        'max-price': { type: 'string' },
        'window-ms': { type: 'string' },
        answer: { type: 'string', multiple: true },
        key: { type: 'string' },
        out: { type: 'string' },
        bundle: { type: 'string' },
        'state-dir': { type: 'string' },
        verdict: { type: 'string' },
        reason: { type: 'string' },
        resume: { type: 'string' },
        'no-settle': { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (e) {
    usage(e.message);
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (!args.provider) usage('--provider is required');
  if (!args.resume && (!args.manifest || !args.input)) usage('--manifest and --input are required (or --resume)');
  if (args.manifest && !/^[0-9a-f]{64}$/.test(args.manifest)) usage('--manifest: 64 lowercase hex digits');
  for (const o of ['max-price', 'window-ms']) if (args[o] !== undefined && !/^[0-9]+$/.test(args[o])) usage(`--${o}: a non-negative integer`);
  const verdictOpt = args.verdict ?? 'auto';
  if (!['auto', 'accepted', 'disputed'].includes(verdictOpt)) usage('--verdict: auto, accepted or disputed');
  const reason = args.reason ?? '';
  if (Buffer.byteLength(reason) > 512) usage('--reason: at most 512 bytes');
  const answers = (args.answer ?? []).map((a, i) => parseJsonBytes(new TextEncoder().encode(a), `--answer #${i + 1}`));
  // The provider records {"answer":…,"type":"answer"} (27 bytes more) and refuses a payload
  // over 1 MiB. Its canonical JSON may differ in length from the text sent (hiring.md, Answer).
  for (const a of answers) if (a.length + 27 > T.LIMITS.disclosure) usage('--answer: too large to be recorded (1 MiB)');

  let provider;
  try {
    provider = providerOf(args.provider);
  } catch (e) {
    usage(`--provider: ${e.message}`);
  }
  const seed = loadKey(args.key);
  const key = { seed, publicKey: publicKeyOf(seed) };
  const store = new Store(args['state-dir'] ?? 'souk-js-state');
  const log = args.quiet ? () => {} : (ev) => process.stderr.write(`${JSON.stringify(plain(ev))}\n`);

  const report = {
    ok: false,
    provider: nodeIdText(provider.key),
    provider_peer_id: provider.peerId,
    client: nodeIdText(key.publicKey),
    client_peer_id: peerIdText(key.publicKey),
    states: [],
  };
  let exit = EXIT.failed;
  const node = await startNode(seed, key.publicKey);
  const client = new HireClient({ node, ma: provider.ma, provider: provider.key, key, store, log });
  let chainResult = null;
  try {
    let manifest;
    let contract;
    let input;
    let salt;
    let stored = null;
    if (args.resume) {
      stored = store.load(args.resume);
      manifest = verifyManifest(stored.manifest);
      contract = verifyContract(stored.contract, manifest);
      ({ input, salt } = stored);
      report.resumed = true;
    } else {
      input = parseJsonBytes(new Uint8Array(fs.readFileSync(args.input)), args.input);
      manifest = await loadManifest(client, unhex(args.manifest), args['manifest-file'], log);
      report.manifest_id = hex(manifest.id);
      report.agent = manifest.body.name;
      report.manifest = plain({
        seq: manifest.body.seq, envelope_id: manifest.envelopeId,
        pricing: manifest.body.pricing, limits: manifest.body.limits, runtime_digest: manifest.body.runtimeDigest,
      });
      log({ event: 'manifest', id: manifest.id, name: manifest.body.name, seq: manifest.body.seq, verified: 'M1 M2 fresh' });
      let neg;
      try {
        neg = await client.negotiate(manifest, input, {
          maxPrice: args['max-price'] ?? null, windowMs: args['window-ms'] ?? null,
        });
      } catch (e) {
        if (e.declined === 'superseded' && e.current) report.current_manifest = await describeCurrent(client, manifest, e.current);
        throw e;
      }
      salt = neg.salt;
      contract = client.contract(manifest, neg);
      // Stored durably before the accept call (hiring.md, client step 5).
      store.saveHire(contract.hireId, { manifest: manifest.bytes, contract: contract.bytes, input, salt, provider: provider.key });
    }
    report.hire_id = hex(contract.hireId);
    report.manifest_id = hex(manifest.id);
    report.agent = manifest.body.name;
    report.terms = plain({
      proposal: contract.kind === 0 ? 'offer' : 'counter',
      price: contract.terms.price, deadline: contract.terms.deadline,
    });
    report.contract = 'verified C1-C7';
    if (!args.resume) await client.accept(contract, input, salt);
    else client.state('accepted', { hire_id: contract.hireId });

    // Follow until the contract's deadline has passed by a margin (the provider must append
    // `expired` at the deadline, hiring.md provider job).
    const deadlineMs = Math.max(0, Number(contract.terms.deadline) - Date.now()) + 120000;
    chainResult = await client.follow(contract, manifest, {
      answers, deadlineMs, stored, acceptCall: T.acceptCall(contract.bytes, input, salt),
    });
    const { chain, disclosures, output, questions } = chainResult;
    report.final_state = chain.state;
    report.questions = plain(questions);
    if (output !== null) {
      report.output_hash_ok = true;
      const text = Buffer.from(output).toString('utf8');
      try {
        report.output = JSON.parse(text);
      } catch {
        report.output = text;
      }
    } else {
      report.output = null;
    }
    const completed = chain.state === 'completed';
    let settlement = null;
    const attestation = stored?.attestation ?? null;
    if (!args['no-settle']) {
      const verdict = verdictOpt === 'auto' ? (completed ? 0 : 1) : verdictOpt === 'accepted' ? 0 : 1;
      const r = await client.settle(chain, verdict, verdictOpt === 'auto' && !completed && !reason ? `hire ended ${chain.state}` : reason, attestation);
      settlement = { verdict: r.verdict, result: r.result, redelivered: !!attestation, attestation_id: hex(taggedId(TAGS.attestation, T.decodeEnvelope(r.attestation, T.LIMITS.attestation, T.attestationBody, 'a').bodyBytes)) };
      chainResult.attestation = r.attestation;
    } else if (attestation) {
      chainResult.attestation = attestation;
    }
    report.settlement = settlement;
    exit = completed && (args['no-settle'] || settlement?.result === 'ok') ? EXIT.ok : EXIT.unfinished;
    report.ok = exit === EXIT.ok;
    if (args.bundle) {
      const bytes = buildBundle({
        manifest: manifest.bytes, contract: contract.bytes, entries: chain.entries.map((e) => e.bytes),
        attestation: chainResult.attestation ?? null, disclosures: [...disclosures.values()],
      });
      const check = verifyBundle(bytes);
      fs.writeFileSync(args.bundle, bytes);
      report.bundle = { file: args.bundle, valid: check.valid, state: check.state, verdict: check.verdict };
    }
  } catch (e) {
    if (!(e instanceof HireError) && e?.name !== 'RuleError' && e?.name !== 'CallFailed') {
      report.error = { stage: 'internal', message: e?.stack ?? String(e) };
    } else {
      report.error = plain({ stage: e.stage ?? e.name, message: e.message, rule: e.rule ?? null, entry: e.entry ?? null, declined: e.declined, current: e.current, proof: e.proof });
      // A decline or lapsed terms is a verified negotiation that ended: not a verification failure.
      if (e.declined || e.stage === 'negotiate') exit = EXIT.unfinished;
    }
    if (e.chain) chainResult = { chain: e.chain, disclosures: new Map() };
  } finally {
    await node.stop();
  }
  report.states = client.states;
  if (chainResult?.chain) {
    const ds = chainResult.disclosures ?? new Map();
    report.entries_verified = chainResult.chain.length;
    report.entries = chainResult.chain.entries.map((e) => entryReport(e, ds.get(Number(e.body.seq))));
  }
  const text = `${JSON.stringify(report, null, 2)}\n`;
  if (args.out) fs.writeFileSync(args.out, text);
  process.stdout.write(text);
  return exit;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${e?.stack ?? e}\n`);
    process.exit(EXIT.failed);
  },
);

