//! A bounded, process-wide memo of public keys that passed the key rule
//! ([`crate::identity::NodeId::from_bytes`]), with their decompressed verification keys (part
//! of [`crate::signature`]: the one module that uses the verification library).
//!
//! Validating a key costs a point decompression and a scalar multiplication by the group
//! order, about one signature check; a node sees the same few thousand keys over and over
//! (every manifest, receipt entry and outcome record names one), and decoding a manifest
//! that arrives by gossip validated its provider's key twice and decompressed it a third
//! time to check the signature. Only keys that passed are kept, and the rule is a pure
//! function of the 32 bytes, so a hit gives exactly the verdict a recomputation would:
//! verification stays a function of the bytes. Bounded at [`CAPACITY`] keys; when full it
//! starts over (a peer that makes up keys only costs itself the recomputation).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use ed25519_zebra::VerificationKey;

use crate::identity::PUBLIC_KEY_LEN;

/// Most keys kept.
pub(crate) const CAPACITY: usize = 8192;

/// Keys that passed, with their verification keys; starts over when full.
struct Memo {
    keys: HashMap<[u8; PUBLIC_KEY_LEN], VerificationKey>,
    capacity: usize,
}

impl Memo {
    fn get(&self, bytes: &[u8; PUBLIC_KEY_LEN]) -> Option<VerificationKey> {
        self.keys.get(bytes).copied()
    }

    fn insert(&mut self, bytes: [u8; PUBLIC_KEY_LEN], key: VerificationKey) {
        if self.keys.len() >= self.capacity {
            self.keys.clear();
        }
        self.keys.insert(bytes, key);
    }
}

static KEYS: Mutex<Option<Memo>> = Mutex::new(None);

/// The verification key of `bytes` if they passed the key rule before.
pub(crate) fn get(bytes: &[u8; PUBLIC_KEY_LEN]) -> Option<VerificationKey> {
    let keys = KEYS.lock().unwrap_or_else(PoisonError::into_inner);
    keys.as_ref().and_then(|m| m.get(bytes))
}

/// Remembers that `bytes` passed the key rule, with its verification key.
pub(crate) fn insert(bytes: [u8; PUBLIC_KEY_LEN], key: VerificationKey) {
    let mut keys = KEYS.lock().unwrap_or_else(PoisonError::into_inner);
    keys.get_or_insert_with(|| Memo {
        keys: HashMap::new(),
        capacity: CAPACITY,
    })
    .insert(bytes, key);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::identity::{Keypair, NodeId};

    fn key(i: u32) -> NodeId {
        let mut seed = [7u8; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        Keypair::from_seed(&seed).id()
    }

    #[test]
    fn a_valid_key_is_remembered_and_an_invalid_one_never_is() {
        let id = key(1);
        assert!(NodeId::from_bytes(id.as_bytes()).is_ok());
        assert!(get(id.as_bytes()).is_some());
        // The identity point: canonical but of small order, refused every time, never kept.
        let mut weak = [0u8; PUBLIC_KEY_LEN];
        weak[0] = 1;
        for _ in 0..2 {
            assert!(NodeId::from_bytes(&weak).is_err());
            assert!(get(&weak).is_none());
        }
    }

    #[test]
    fn the_memo_stays_bounded() {
        let mut m = Memo {
            keys: HashMap::new(),
            capacity: 3,
        };
        for i in 0..10 {
            let id = key(i);
            m.insert(
                *id.as_bytes(),
                VerificationKey::try_from(*id.as_bytes()).unwrap(),
            );
            assert!(m.keys.len() <= 3);
            assert!(m.get(id.as_bytes()).is_some());
        }
    }
}
