//! PLACEHOLDER until the outcome gossip lands (replaced at merge).

use souk_protocol::equivocation::EquivocationProof;
use souk_protocol::outcome::OutcomeRecord;

use super::Node;
use super::handle::NodeError;
use crate::hire::PublicRecord;

impl Node {
    pub(super) fn publish_record(&mut self, record: PublicRecord) -> Result<(), NodeError> {
        let ok = match &record {
            PublicRecord::Outcome(b) => OutcomeRecord::verify_bytes(b).is_ok(),
            PublicRecord::Equivocation(b) => EquivocationProof::verify_bytes(b).is_ok(),
        };
        if ok { Ok(()) } else { Err(NodeError::Stopped) }
    }
}
