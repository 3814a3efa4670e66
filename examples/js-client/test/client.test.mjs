// The client's hire flow against a scripted provider (test/fake-provider.mjs) over real
// libp2p connections on 127.0.0.1: the happy path, a question, and every way the provider
// can cheat that the follower must catch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startFakeProvider } from './fake-provider.mjs';
import { HireClient, HireError } from '../lib/client.mjs';
import { startNode, providerOf } from '../lib/transport.mjs';
import { publicKeyOf, unhex } from '../lib/crypto.mjs';
import { verifyProof } from '../lib/equivocation.mjs';

const input = new TextEncoder().encode('{"csv":"a,b\\n1,2\\n"}');

async function hire(scenario, { answers = [] } = {}) {
  const fake = await startFakeProvider(scenario);
  const seed = new Uint8Array(randomBytes(32));
  const key = { seed, publicKey: publicKeyOf(seed) };
  const node = await startNode(seed, key.publicKey);
  const p = providerOf(fake.addr);
  const events = [];
  const client = new HireClient({ node, ma: p.ma, provider: p.key, key, log: (e) => events.push(e) });
  try {
    const manifest = await client.findManifest(fake.manifest.id);
    const neg = await client.negotiate(manifest, input);
    const contract = client.contract(manifest, neg);
    assert.equal(await client.accept(contract, input, neg.salt), true);
    const res = await client.follow(contract, manifest, { answers, deadlineMs: 20000 });
    const settled = await client.settle(res.chain, 0, '');
    return { fake, client, res, settled, events };
  } finally {
    await node.stop();
    await fake.stop();
  }
}

async function hireFails(scenario) {
  try {
    await hire(scenario);
  } catch (e) {
    assert.ok(e instanceof HireError, `expected a HireError, got ${e?.stack}`);
    return e;
  }
  assert.fail(`${scenario}: the hire should have failed`);
}

test('honest provider: offer, accept, verified chain, output, settlement', async () => {
  const { fake, client, res, settled } = await hire('honest');
  assert.deepEqual(client.states, ['requested', 'negotiating', 'accepted', 'working', 'completed']);
  assert.equal(res.chain.length, 3);
  assert.equal(new TextDecoder().decode(res.output), '{"rows":1}');
  assert.equal(res.disclosures.size, 1);
  assert.equal(settled.result, 'ok');
  assert.ok(fake.hire.attestation, 'the provider holds the attestation');
  assert.deepEqual(fake.calls.slice(0, 2), ['request', 'accept']);
});

test('question: the answer is sent and recorded', async () => {
  const { fake, client, res } = await hire('question', { answers: [new TextEncoder().encode('{"column":"a"}')] });
  assert.equal(fake.hire.answered, '{"column":"a"}');
  assert.deepEqual(client.states, ['requested', 'negotiating', 'accepted', 'working', 'input-required', 'working', 'completed']);
  assert.equal(res.questions.length, 1);
  assert.deepEqual(res.questions[0].question, { question: { text: 'which column?' }, type: 'question' });
});

test('question without an answer: the hire is canceled and still settles', async () => {
  const { fake, res, settled } = await hire('question');
  assert.equal(res.chain.state, 'canceled');
  assert.ok(fake.calls.includes('cancel'));
  assert.equal(settled.result, 'ok');
});

test('a gap is fetched again, not treated as misbehaviour', async () => {
  const { fake, res } = await hire('gap');
  assert.equal(res.chain.state, 'completed');
  assert.ok(fake.hire.fetches >= 2, 'the page with the gap was fetched again');
});

test('a tampered entry signature stops the follower (R3 at entry 1)', async () => {
  const e = await hireFails('tampered');
  assert.equal(e.rule, 'R3');
  assert.equal(e.entry, 1);
  assert.equal(e.chain.length, 1, 'only the verified prefix is kept');
});

test('an output that does not match output-hash stops the follower', async () => {
  const e = await hireFails('bad-output');
  assert.match(e.message, /output-hash/);
});

test('a disclosure that does not open its commitment stops the follower (D2)', async () => {
  const e = await hireFails('bad-disclosure');
  assert.equal(e.rule, 'D2');
  assert.equal(e.chain.length, 1);
});

test('two different entries for one seq give a valid equivocation proof', async () => {
  const e = await hireFails('equivocate');
  assert.match(e.message, /equivocated at seq 1/);
  const r = verifyProof(unhex(e.proof));
  assert.equal(r.valid, true);
  assert.equal(r.seq, 1n);
});
