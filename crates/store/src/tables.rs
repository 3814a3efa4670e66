//! Table definitions and the byte layouts of their keys and values (see `spec/store.md`).
//!
//! Every table maps raw bytes to raw bytes (`&[u8] -> &[u8]`): the store encodes and decodes
//! its keys and values itself, so the on-disk layout is exactly what `spec/store.md` documents,
//! independent of redb's own encodings of typed keys, and a damaged row surfaces as a
//! [`StoreError::Corrupt`] instead of a panic inside a decoder. Integers are big-endian, so
//! byte order is numeric order where a key contains one.

use redb::TableDefinition;
use souk_protocol::Hash;

use crate::error::StoreError;

/// The type of every table: raw bytes to raw bytes.
pub(crate) type Bytes = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// `meta`: store-wide metadata; today only [`SCHEMA_VERSION_KEY`]. Its name and types never
/// change across schema versions, so any version can read the version of any file.
pub(crate) const META: Bytes = TableDefinition::new("meta");

/// `manifests`: manifest id (32 bytes) -> the canonical signed envelope bytes.
pub(crate) const MANIFESTS: Bytes = TableDefinition::new("manifests");

/// `manifest_latest`: provider (32 bytes) ++ name (UTF-8) -> seq (u64 BE) ++ id (32 bytes).
pub(crate) const MANIFEST_LATEST: Bytes = TableDefinition::new("manifest_latest");

/// `manifest_expiry`: expires_at (u64 BE, ms) ++ id (32 bytes) -> empty.
pub(crate) const MANIFEST_EXPIRY: Bytes = TableDefinition::new("manifest_expiry");

/// `agents`: agent name (UTF-8) -> the node's opaque record (JSON today).
pub(crate) const AGENTS: Bytes = TableDefinition::new("agents");

/// `node_state`: key (UTF-8) -> opaque value.
pub(crate) const NODE_STATE: Bytes = TableDefinition::new("node_state");

/// `hires` (v2): hire id (32 bytes) -> the node's opaque hire record (JSON today).
pub(crate) const HIRES: Bytes = TableDefinition::new("hires");

/// `receipts` (v2): hire id (32 bytes) ++ seq (u64 BE) -> the signed receipt entry envelope.
pub(crate) const RECEIPTS: Bytes = TableDefinition::new("receipts");

/// `receipt_payloads` (v2): hire id (32 bytes) ++ seq (u64 BE) -> the entry's opaque private
/// payload (salt ++ payload today). A row exists only for entries stored with a payload.
pub(crate) const RECEIPT_PAYLOADS: Bytes = TableDefinition::new("receipt_payloads");

/// `hire_blobs` (v2): hire id (32 bytes) ++ name (UTF-8) -> opaque bytes.
pub(crate) const HIRE_BLOBS: Bytes = TableDefinition::new("hire_blobs");

/// `outcomes` (v3): hire id (32 bytes) -> a verified outcome record's canonical bytes.
pub(crate) const OUTCOMES: Bytes = TableDefinition::new("outcomes");

/// `equivocations` (v3): provider (32 bytes) -> a verified equivocation proof's canonical bytes.
pub(crate) const EQUIVOCATIONS: Bytes = TableDefinition::new("equivocations");

/// `outbox` (v3): kind (1 byte: 0 outcome, 1 proof) ++ key (32 bytes) -> empty: rows of
/// `outcomes` / `equivocations` this node published and has not yet handed to gossip.
pub(crate) const OUTBOX: Bytes = TableDefinition::new("outbox");

/// Every table of the current schema, created at open if missing.
pub(crate) const ALL: [Bytes; 13] = [
    META,
    MANIFESTS,
    MANIFEST_LATEST,
    MANIFEST_EXPIRY,
    AGENTS,
    NODE_STATE,
    HIRES,
    RECEIPTS,
    RECEIPT_PAYLOADS,
    HIRE_BLOBS,
    OUTCOMES,
    EQUIVOCATIONS,
    OUTBOX,
];

/// The `meta` key holding the schema version, a u32 BE.
pub(crate) const SCHEMA_VERSION_KEY: &[u8] = b"schema_version";

/// Length of an id and of a provider key.
const ID_LEN: usize = 32;
/// Length of an encoded u64 (seq, timestamp).
const U64_LEN: usize = 8;

/// Length of a `manifest_latest` value.
pub(crate) const LATEST_VALUE_LEN: usize = U64_LEN + ID_LEN;
/// Length of a `manifest_expiry` key.
pub(crate) const EXPIRY_KEY_LEN: usize = U64_LEN + ID_LEN;
/// Length of a `receipts` or `receipt_payloads` key.
pub(crate) const RECEIPT_KEY_LEN: usize = ID_LEN + U64_LEN;

/// Encodes a schema version for `meta`.
pub(crate) fn encode_version(version: u32) -> [u8; 4] {
    version.to_be_bytes()
}

/// Decodes the schema version stored in `meta`.
pub(crate) fn decode_version(bytes: &[u8]) -> Result<u32, StoreError> {
    let raw: [u8; 4] = bytes.try_into().map_err(|_| {
        StoreError::corrupt(format!(
            "meta.schema_version is {} bytes, expected 4",
            bytes.len()
        ))
    })?;
    Ok(u32::from_be_bytes(raw))
}

/// Decodes a 32-byte id stored as a key or inside a value.
pub(crate) fn decode_id(bytes: &[u8], table: &str) -> Result<Hash, StoreError> {
    let raw: [u8; ID_LEN] = bytes.try_into().map_err(|_| {
        StoreError::corrupt(format!(
            "{table}: id is {} bytes, expected {ID_LEN}",
            bytes.len()
        ))
    })?;
    Ok(Hash(raw))
}

/// The `manifest_latest` key of `(provider, name)`: the 32 provider bytes, then the name's UTF-8
/// bytes (no separator or length: the provider has a fixed length).
pub(crate) fn latest_key(provider: &[u8; 32], name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(ID_LEN + name.len());
    key.extend_from_slice(provider);
    key.extend_from_slice(name.as_bytes());
    key
}

/// A `manifest_latest` value: the highest seq stored for a `(provider, name)`, and its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Latest {
    /// The manifest's seq.
    pub(crate) seq: u64,
    /// The manifest's id.
    pub(crate) id: Hash,
}

impl Latest {
    /// `seq` (u64 BE) ++ `id`.
    pub(crate) fn encode(&self) -> [u8; LATEST_VALUE_LEN] {
        let mut out = [0u8; LATEST_VALUE_LEN];
        out[..U64_LEN].copy_from_slice(&self.seq.to_be_bytes());
        out[U64_LEN..].copy_from_slice(&self.id.0);
        out
    }

    /// The inverse of [`Latest::encode`].
    pub(crate) fn decode(bytes: &[u8]) -> Result<Latest, StoreError> {
        let (seq, id) = split_u64_id(bytes).ok_or_else(|| {
            StoreError::corrupt(format!(
                "manifest_latest: value is {} bytes, expected {LATEST_VALUE_LEN}",
                bytes.len()
            ))
        })?;
        Ok(Latest { seq, id })
    }
}

/// The `manifest_expiry` key: `expires_at` (u64 BE) ++ `id`, so keys sort by expiry time.
pub(crate) fn expiry_key(expires_at: u64, id: &Hash) -> [u8; EXPIRY_KEY_LEN] {
    let mut out = [0u8; EXPIRY_KEY_LEN];
    out[..U64_LEN].copy_from_slice(&expires_at.to_be_bytes());
    out[U64_LEN..].copy_from_slice(&id.0);
    out
}

/// The inverse of [`expiry_key`].
pub(crate) fn decode_expiry_key(bytes: &[u8]) -> Result<(u64, Hash), StoreError> {
    split_u64_id(bytes).ok_or_else(|| {
        StoreError::corrupt(format!(
            "manifest_expiry: key is {} bytes, expected {EXPIRY_KEY_LEN}",
            bytes.len()
        ))
    })
}

/// Splits `u64 BE ++ 32-byte id`; `None` if the length is wrong.
fn split_u64_id(bytes: &[u8]) -> Option<(u64, Hash)> {
    if bytes.len() != U64_LEN + ID_LEN {
        return None;
    }
    let (n, id) = bytes.split_at(U64_LEN);
    let n: [u8; U64_LEN] = n.try_into().ok()?;
    let id: [u8; ID_LEN] = id.try_into().ok()?;
    Some((u64::from_be_bytes(n), Hash(id)))
}

/// Whether `bytes` (a `manifest_latest` value or a `manifest_expiry` key) ends with `id`.
pub(crate) fn ends_with_id(bytes: &[u8], id: &Hash) -> bool {
    bytes.len() == U64_LEN + ID_LEN && bytes[U64_LEN..] == id.0
}

/// The `receipts` / `receipt_payloads` key of `(hire, seq)`: the 32 hire id bytes, then `seq`
/// (u64 BE), so the rows of one hire are contiguous and sorted by seq.
pub(crate) fn receipt_key(hire: &Hash, seq: u64) -> [u8; RECEIPT_KEY_LEN] {
    let mut out = [0u8; RECEIPT_KEY_LEN];
    out[..ID_LEN].copy_from_slice(&hire.0);
    out[ID_LEN..].copy_from_slice(&seq.to_be_bytes());
    out
}

/// The seq of a `receipts` / `receipt_payloads` key that belongs to `hire` (found by a range
/// scan over that hire's keys).
pub(crate) fn decode_receipt_seq(
    bytes: &[u8],
    hire: &Hash,
    table: &str,
) -> Result<u64, StoreError> {
    if bytes.len() != RECEIPT_KEY_LEN || bytes[..ID_LEN] != hire.0 {
        return Err(StoreError::corrupt(format!(
            "{table}: key of {} bytes in the range of hire {} is not hire id ++ u64 BE seq",
            bytes.len(),
            hire.short()
        )));
    }
    let mut seq = [0u8; U64_LEN];
    seq.copy_from_slice(&bytes[ID_LEN..]);
    Ok(u64::from_be_bytes(seq))
}

/// The `hire_blobs` key of `(hire, name)`: the 32 hire id bytes, then the name's UTF-8 bytes (no
/// separator or length: the hire id has a fixed length).
pub(crate) fn blob_key(hire: &Hash, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(ID_LEN + name.len());
    key.extend_from_slice(&hire.0);
    key.extend_from_slice(name.as_bytes());
    key
}

/// Decodes a UTF-8 key (agent name or state key).
pub(crate) fn decode_name(bytes: &[u8], table: &str) -> Result<String, StoreError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|e| StoreError::corrupt(format!("{table}: key is not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_round_trips() {
        let v = Latest {
            seq: 0x0102_0304_0506_0708,
            id: Hash([7; 32]),
        };
        let bytes = v.encode();
        assert_eq!(&bytes[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(Latest::decode(&bytes).ok(), Some(v));
        assert!(matches!(
            Latest::decode(&bytes[..39]),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn expiry_keys_sort_by_time() {
        let a = expiry_key(255, &Hash([0xff; 32]));
        let b = expiry_key(256, &Hash([0; 32]));
        assert!(a < b);
        assert_eq!(decode_expiry_key(&b).ok(), Some((256, Hash([0; 32]))));
        assert!(ends_with_id(&a, &Hash([0xff; 32])));
        assert!(!ends_with_id(&a, &Hash([0; 32])));
    }

    #[test]
    fn latest_key_is_provider_then_name() {
        let key = latest_key(&[9; 32], "csv");
        assert_eq!(&key[..32], &[9; 32]);
        assert_eq!(&key[32..], b"csv");
    }

    #[test]
    fn receipt_keys_sort_by_hire_then_seq() {
        let hire = Hash([3; 32]);
        let a = receipt_key(&hire, 255);
        let b = receipt_key(&hire, 256);
        let c = receipt_key(&Hash([4; 32]), 0);
        assert!(a < b && b < c);
        assert_eq!(&b[..32], &[3; 32]);
        assert_eq!(&b[32..], &[0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(decode_receipt_seq(&b, &hire, "receipts").ok(), Some(256));
        assert!(decode_receipt_seq(&c, &hire, "receipts").is_err());
        assert!(decode_receipt_seq(&b[..39], &hire, "receipts").is_err());
    }

    #[test]
    fn blob_key_is_hire_then_name() {
        let key = blob_key(&Hash([5; 32]), "input");
        assert_eq!(&key[..32], &[5; 32]);
        assert_eq!(&key[32..], b"input");
    }

    #[test]
    fn version_layout() {
        assert_eq!(encode_version(1), [0, 0, 0, 1]);
        assert_eq!(decode_version(&[0, 0, 1, 0]).ok(), Some(256));
        assert!(decode_version(&[1]).is_err());
    }
}
