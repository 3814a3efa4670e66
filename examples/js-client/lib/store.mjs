// The client's durable store (hiring.md: the contract, manifest, input and salt MUST be
// stored durably before the accept call; verified entries and the attestation likewise).
// One directory per hire, named by the hire id in hex; every write is a temporary file,
// fsync, rename, fsync of the directory. Holds no secrets (the key file is separate).

import fs from 'node:fs';
import path from 'node:path';
import { encode, decode } from './cbor.mjs';
import { hex } from './crypto.mjs';

function writeDurably(file, bytes) {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, bytes);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dfd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dfd);
  } finally {
    fs.closeSync(dfd);
  }
}

export class Store {
  constructor(dir) {
    this.dir = dir;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  hireDir(hireId) {
    const d = path.join(this.dir, hex(hireId));
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    return d;
  }
  /** The contract and what is needed to (re-)send the accept and to verify the chain. */
  saveHire(hireId, { manifest, contract, input, salt, provider }) {
    const d = this.hireDir(hireId);
    writeDurably(path.join(d, 'hire.cbor'), encode([manifest, contract, input, salt, provider]));
  }
  /** Appends a verified page: [{entry, disclosure}] (the whole list is rewritten). */
  appendEntries(hireId, page) {
    if (page.length === 0) return;
    const d = this.hireDir(hireId);
    const file = path.join(d, 'entries.cbor');
    const held = fs.existsSync(file) ? decode(new Uint8Array(fs.readFileSync(file))) : [];
    for (const { entry, disclosure } of page) {
      held.push([entry.bytes, disclosure ? [disclosure.seq, disclosure.salt, disclosure.payload] : null]);
    }
    writeDurably(file, encode(held));
  }
  saveOutput(hireId, output) {
    writeDurably(path.join(this.hireDir(hireId), 'output'), output);
  }
  saveAttestation(hireId, bytes) {
    writeDurably(path.join(this.hireDir(hireId), 'attestation.cbor'), bytes);
  }
  saveProof(hireId, bytes) {
    writeDurably(path.join(this.hireDir(hireId), 'equivocation.cbor'), bytes);
  }
  /** Loads a stored hire: { manifest, contract, input, salt, provider, entries: [[bytes, disclosure|null]] }. */
  load(hireIdHex) {
    const d = path.join(this.dir, hireIdHex);
    const [manifest, contract, input, salt, provider] = decode(new Uint8Array(fs.readFileSync(path.join(d, 'hire.cbor'))));
    const ef = path.join(d, 'entries.cbor');
    const entries = fs.existsSync(ef) ? decode(new Uint8Array(fs.readFileSync(ef))) : [];
    const af = path.join(d, 'attestation.cbor');
    const attestation = fs.existsSync(af) ? new Uint8Array(fs.readFileSync(af)) : null;
    const of = path.join(d, 'output');
    const output = fs.existsSync(of) ? new Uint8Array(fs.readFileSync(of)) : null;
    return { manifest, contract, input, salt, provider, entries, attestation, output };
  }
}
