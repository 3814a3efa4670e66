//! Serde support (feature `serde`) for the ids and states a node keeps in JSON records and
//! shows through its API. Each type serializes as its text form, exactly as it is displayed
//! (`Hash` as 64 lowercase hex digits, `NodeId` as `souk…`, states and verdicts by name), so a
//! record written before these impls existed reads back unchanged. Nothing signed or hashed
//! ever goes through serde: the wire and the receipts use [`crate::encoding`] only.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::Hash;
use crate::hire::{HireState, Verdict};
use crate::identity::NodeId;

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Hash::from_hex(&text)
            .ok_or_else(|| D::Error::custom(format!("{text:?} is not 64 hex digits")))
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(D::Error::custom)
    }
}

impl Serialize for HireState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for HireState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        HireState::parse(&text)
            .ok_or_else(|| D::Error::custom(format!("{text:?} is not a hire state")))
    }
}

impl Serialize for Verdict {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Verdict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Verdict::parse(&text).ok_or_else(|| D::Error::custom(format!("{text:?} is not a verdict")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip_and_junk_is_refused() {
        let h = Hash::digest(b"x");
        let json = serde_json::to_string(&h).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json, format!("\"{}\"", h.to_hex()));
        assert_eq!(
            serde_json::from_str::<Hash>(&json).unwrap_or_else(|e| panic!("{e}")),
            h
        );
        assert!(serde_json::from_str::<Hash>("\"abc\"").is_err());
        for st in HireState::ALL {
            let json = serde_json::to_string(&st).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(json, format!("\"{}\"", st.as_str()));
            assert_eq!(
                serde_json::from_str::<HireState>(&json).unwrap_or_else(|e| panic!("{e}")),
                st
            );
        }
        assert!(serde_json::from_str::<HireState>("\"done\"").is_err());
        assert!(serde_json::from_str::<Verdict>("\"maybe\"").is_err());
        let v: Verdict = serde_json::from_str("\"disputed\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v, Verdict::Disputed);
        let id = crate::Keypair::from_seed(&[3; 32]).id();
        let json = serde_json::to_string(&id).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(
            serde_json::from_str::<NodeId>(&json).unwrap_or_else(|e| panic!("{e}")),
            id
        );
    }
}
