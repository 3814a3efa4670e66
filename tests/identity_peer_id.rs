//! The node id to libp2p PeerId mapping of `spec/identity.md`, checked against libp2p's own
//! implementation: the protocol crate computes PeerIds without depending on libp2p, and the
//! node signs with the same key for libp2p, so the two must agree byte for byte.

use libp2p_identity::{Keypair as P2pKeypair, PeerId};
use souk_protocol::identity::Keypair;

#[test]
fn peer_ids_match_libp2p() {
    for seed in [
        [0u8; 32],
        [0x11; 32],
        [0x22; 32],
        [0xff; 32],
        *blake3::hash(b"souk").as_bytes(),
    ] {
        let ours = Keypair::from_seed(&seed).id();
        let mut secret = seed;
        let theirs = P2pKeypair::ed25519_from_bytes(&mut secret).unwrap_or_else(|e| panic!("{e}"));
        let peer = PeerId::from(theirs.public());
        assert_eq!(ours.peer_id_bytes().to_vec(), peer.to_bytes());
        assert_eq!(ours.peer_id_text(), peer.to_base58());
        // Signatures over the same bytes are identical (RFC 8032 is deterministic).
        let msg = b"souk/v1/receipt\0body";
        let p2p_sig = theirs.sign(msg).unwrap_or_else(|e| panic!("{e}"));
        let vk = souk_protocol::signature::VerifyingKey::new(&ours);
        let sig: [u8; 64] = p2p_sig
            .as_slice()
            .try_into()
            .unwrap_or_else(|_| panic!("sig len"));
        assert!(souk_protocol::signature::verify(&vk, msg, &sig));
    }
}

#[test]
fn identity_vectors_match_libp2p() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../spec/vectors/identity.json"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let items: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    for v in items.as_array().into_iter().flatten() {
        let mut seed: [u8; 32] = hex::decode(v["seed"].as_str().unwrap_or_default())
            .ok()
            .and_then(|s| s.try_into().ok())
            .unwrap_or_else(|| panic!("seed"));
        let kp = P2pKeypair::ed25519_from_bytes(&mut seed).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            PeerId::from(kp.public()).to_base58(),
            v["peer_id"].as_str().unwrap_or_default()
        );
    }
}
