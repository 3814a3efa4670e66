//! Errors of the ledger. Callers match on the variant; the message is for people.

use std::fmt;

/// Why [`Ledger::insert`](crate::Ledger::insert) refused a fact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// The ledger holds a fact for this hire id with a different provider, agent or client.
    /// A hire id commits to its contract, so two verified records cannot disagree on these:
    /// the caller mapped a record wrongly. The held fact is kept.
    #[error("hire {}: provider, agent or client differ from the fact already held", Hex(.hire_id))]
    ContractMismatch {
        /// The hire id.
        hire_id: [u8; 32],
    },
}

/// Lowercase hex of the first 8 bytes, then `…`.
struct Hex<'a>(&'a [u8; 32]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_the_hire() {
        let mut id = [0u8; 32];
        id[0] = 0xab;
        id[7] = 0x01;
        let e = InsertError::ContractMismatch { hire_id: id };
        assert_eq!(
            e.to_string(),
            "hire ab00000000000001…: provider, agent or client differ from the fact already held"
        );
    }
}
