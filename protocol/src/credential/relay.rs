//! Messages of the relay protocol `/souk/relay/1` (provider -> client, request-response) and
//! the client-signed [`RelayRecord`] of a relayed exchange.
//!
//! In relayed mode the provider's egress proxy forwards the agent's un-injected request to the
//! hire's client node ([`RelayRequest`]); the client checks its own copy of the policy, injects
//! the secret, performs the HTTPS call, scrubs the response and answers with it and its signed
//! record ([`RelayReply::Response`]), or refuses ([`RelayReply::Denied`]). The record goes into
//! the provider's `network-call` receipt entry, where rule R10 checks it. Pure types and
//! encodings only: no networking, no secret. Spec: `spec/credentials.md`.

use crate::Timestamp;
use crate::credential::denial::DenialCode;
use crate::encoding::{self, Canonical, DecodeError, DecodeErrorKind, Encoder, Reader};
use crate::hash::{Domain, Hash};
use crate::identity::NodeId;
use crate::manifest::{is_valid_host, is_valid_name};
use crate::negotiation::HireId;
use crate::receipt::MAX_PATH_LEN;
use crate::signed::{Signed, SignedBody, SignedError};

/// The request-response protocol name.
pub const RELAY_PROTOCOL: &str = "/souk/relay/1";
/// Format version of relay messages and records.
pub const RELAY_VERSION: u64 = 1;
/// Length of a request id.
pub const REQUEST_ID_LEN: usize = 16;
/// Longest request target (path and query).
pub const MAX_TARGET_LEN: usize = 8 * 1024;
/// Most headers in a relayed request or response.
pub const MAX_HEADERS: usize = 128;
/// Longest header name.
pub const MAX_HEADER_NAME_LEN: usize = 128;
/// Longest header value.
pub const MAX_HEADER_VALUE_LEN: usize = 8 * 1024;
/// Most bytes of header names and values together in one message.
pub const MAX_HEADERS_LEN: usize = 64 * 1024;
/// Largest relayed request body.
pub const MAX_RELAY_REQUEST_BODY: usize = 8 * 1024 * 1024;
/// Largest relayed response body.
pub const MAX_RELAY_RESPONSE_BODY: usize = 16 * 1024 * 1024;
/// Largest relay request message on the wire.
pub const MAX_RELAY_REQUEST_LEN: usize = MAX_RELAY_REQUEST_BODY + 128 * 1024;
/// Largest relay reply message on the wire.
pub const MAX_RELAY_REPLY_LEN: usize = MAX_RELAY_RESPONSE_BODY + 128 * 1024;
/// Largest relay record body.
pub const MAX_RELAY_RECORD_LEN: usize = 3 * 1024;
/// Largest relay record envelope (body + 128).
pub const MAX_RELAY_RECORD_ENVELOPE_LEN: usize = MAX_RELAY_RECORD_LEN + 128;
/// Longest denial message.
pub const MAX_DENIAL_MESSAGE_LEN: usize = 512;

const MAX_SLOT_NAME: usize = 64;
const MAX_HOST: usize = 253 + 6;
const MAX_METHOD: usize = 16;

/// Header names a relayed request or response never carries: hop-by-hop headers, proxy
/// credentials, and those the performing side derives itself.
pub const FORBIDDEN_HEADERS: [&str; 11] = [
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// One HTTP header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Lowercase field name.
    pub name: String,
    /// Field value bytes.
    pub value: Vec<u8>,
}

/// The provider's request to the client's node: perform this call with the slot's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayRequest {
    /// The hire.
    pub hire_id: HireId,
    /// The credential slot.
    pub slot: String,
    /// Random per call, chosen by the provider; the client refuses a repeated id.
    pub request_id: [u8; REQUEST_ID_LEN],
    /// Method, uppercase.
    pub method: String,
    /// `host[:port]`, port omitted for 443.
    pub host: String,
    /// Path and query, as the agent sent them (starts with `/`).
    pub target: String,
    /// The agent's headers, without forbidden ones, not injected.
    pub headers: Vec<Header>,
    /// The request body.
    pub body: Vec<u8>,
}

/// The client's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayReply {
    /// The upstream answered; `body` and `headers` are already scrubbed of the secret.
    Response {
        /// HTTP status.
        status: u16,
        /// Response headers (scrubbed, without forbidden ones).
        headers: Vec<Header>,
        /// Response body (scrubbed).
        body: Vec<u8>,
        /// The canonical bytes of a `Signed<RelayRecord>` by the client.
        record: Vec<u8>,
    },
    /// The client refused or could not perform the call.
    Denied {
        /// Why.
        code: DenialCode,
        /// For people.
        message: String,
        /// Whether the same call may succeed later.
        retry: bool,
    },
}

/// The client's signed record of one relayed exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayRecord {
    /// The hire.
    pub hire_id: HireId,
    /// The credential slot.
    pub slot: String,
    /// The request's id.
    pub request_id: [u8; REQUEST_ID_LEN],
    /// Method.
    pub method: String,
    /// `host[:port]`.
    pub host: String,
    /// Path without query.
    pub path: String,
    /// Upstream status.
    pub status: u32,
    /// Request body size.
    pub request_bytes: u64,
    /// Response body size (as returned in the reply).
    pub response_bytes: u64,
    /// BLAKE3 of the request body.
    pub request_hash: Hash,
    /// BLAKE3 of the response body as returned in the reply (after scrubbing).
    pub response_hash: Hash,
    /// When the client started the upstream call.
    pub started_at: Timestamp,
    /// How long the upstream call took, in ms.
    pub duration_ms: u64,
}

/// A client-signed relay record envelope.
pub type SignedRelayRecord = Signed<RelayRecord>;

impl SignedBody for RelayRecord {
    const DOMAIN: Domain = Domain::RelayRecord;
    const MAX_BODY_LEN: usize = MAX_RELAY_RECORD_LEN;
    fn named_signer(&self) -> Option<NodeId> {
        None // the contract names the client
    }
}

/// Why a relay message breaks a content rule (beyond decoding).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// The slot name is invalid.
    #[error("slot name {0:?} is invalid")]
    InvalidSlot(String),
    /// The method is not an uppercase token.
    #[error("method {0:?} is not an uppercase token")]
    InvalidMethod(String),
    /// The host is not a lowercase `host[:port]`.
    #[error("host {0:?} is not a lowercase host[:port]")]
    InvalidHost(String),
    /// The target does not start with `/` or carries a fragment.
    #[error("request target must start with '/' and carry no fragment")]
    InvalidTarget,
    /// A header name is not a lowercase token.
    #[error("header name {0:?} is not a lowercase token")]
    InvalidHeaderName(String),
    /// A header value holds a control character other than tab.
    #[error("header {0:?} has a control character in its value")]
    InvalidHeaderValue(String),
    /// A hop-by-hop or derived header.
    #[error("header {0:?} may not be relayed")]
    ForbiddenHeader(String),
    /// A response status outside 100..=999.
    #[error("status {0} is not an HTTP status")]
    InvalidStatus(u16),
}

/// Why the record of a relay reply is not the record of this exchange.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The envelope does not decode, is not signed by the hire's client, or does not verify.
    #[error("relay record: {0}")]
    Envelope(#[from] SignedError),
    /// A field differs from the exchange.
    #[error("relay record field {0} does not match the exchange")]
    Mismatch(&'static str),
}

fn is_method(m: &str) -> bool {
    !m.is_empty() && m.len() <= MAX_METHOD && m.bytes().all(|b| b.is_ascii_uppercase())
}

fn is_header_name(n: &str) -> bool {
    !n.is_empty()
        && n.bytes().all(|b| {
            b.is_ascii_lowercase()
                || b.is_ascii_digit()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

fn check_headers(headers: &[Header]) -> Result<(), RelayError> {
    for h in headers {
        if !is_header_name(&h.name) {
            return Err(RelayError::InvalidHeaderName(h.name.clone()));
        }
        if FORBIDDEN_HEADERS.contains(&h.name.as_str()) {
            return Err(RelayError::ForbiddenHeader(h.name.clone()));
        }
        if h.value
            .iter()
            .any(|b| (*b < 0x20 && *b != b'\t') || *b == 0x7f)
        {
            return Err(RelayError::InvalidHeaderValue(h.name.clone()));
        }
    }
    Ok(())
}

impl RelayRequest {
    /// The path: the target up to its first `?`.
    pub fn path(&self) -> &str {
        self.target
            .split_once('?')
            .map_or(self.target.as_str(), |(p, _)| p)
    }

    /// Content rules: slot name, method, host, target, header names and values.
    pub fn validate(&self) -> Result<(), RelayError> {
        if !is_valid_name(&self.slot, MAX_SLOT_NAME) {
            return Err(RelayError::InvalidSlot(self.slot.clone()));
        }
        if !is_method(&self.method) {
            return Err(RelayError::InvalidMethod(self.method.clone()));
        }
        if !is_valid_host(&self.host) {
            return Err(RelayError::InvalidHost(self.host.clone()));
        }
        if !self.target.starts_with('/') || self.target.contains('#') {
            return Err(RelayError::InvalidTarget);
        }
        check_headers(&self.headers)
    }

    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes a relay request message (limit [`MAX_RELAY_REQUEST_LEN`]).
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode(bytes, MAX_RELAY_REQUEST_LEN)
    }
}

impl RelayReply {
    /// Content rules of a response (status, headers); a denial has none beyond decoding.
    pub fn validate(&self) -> Result<(), RelayError> {
        match self {
            RelayReply::Response {
                status, headers, ..
            } => {
                if !(100..=999).contains(status) {
                    return Err(RelayError::InvalidStatus(*status));
                }
                check_headers(headers)
            }
            RelayReply::Denied { .. } => Ok(()),
        }
    }

    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes a relay reply message (limit [`MAX_RELAY_REPLY_LEN`]).
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode(bytes, MAX_RELAY_REPLY_LEN)
    }
}

impl RelayRecord {
    /// The record of an exchange: fields from the request, the upstream status and the
    /// response body the client returns (after scrubbing).
    pub fn for_exchange(
        request: &RelayRequest,
        status: u16,
        response_body: &[u8],
        started_at: Timestamp,
        duration_ms: u64,
    ) -> Self {
        Self {
            hire_id: request.hire_id,
            slot: request.slot.clone(),
            request_id: request.request_id,
            method: request.method.clone(),
            host: request.host.clone(),
            path: request.path().to_owned(),
            status: u32::from(status),
            request_bytes: request.body.len() as u64,
            response_bytes: response_body.len() as u64,
            request_hash: Hash::digest(&request.body),
            response_hash: Hash::digest(response_body),
            started_at,
            duration_ms,
        }
    }

    /// The first field that differs from the record [`RelayRecord::for_exchange`] would make
    /// for this exchange (times excepted), if any.
    pub fn mismatch(
        &self,
        request: &RelayRequest,
        status: u16,
        response_body: &[u8],
    ) -> Option<&'static str> {
        let want = Self::for_exchange(request, status, response_body, 0, 0);
        let checks: [(&'static str, bool); 11] = [
            ("hire_id", self.hire_id == want.hire_id),
            ("slot", self.slot == want.slot),
            ("request_id", self.request_id == want.request_id),
            ("method", self.method == want.method),
            ("host", self.host == want.host),
            ("path", self.path == want.path),
            ("status", self.status == want.status),
            ("request_bytes", self.request_bytes == want.request_bytes),
            ("response_bytes", self.response_bytes == want.response_bytes),
            ("request_hash", self.request_hash == want.request_hash),
            ("response_hash", self.response_hash == want.response_hash),
        ];
        checks.iter().find(|(_, ok)| !ok).map(|(name, _)| *name)
    }
}

/// What the provider checks before it trusts a [`RelayReply::Response`]: the record decodes,
/// is signed by the hire's `client` (strict), and describes this exchange.
pub fn check_record(
    record: &[u8],
    client: &NodeId,
    request: &RelayRequest,
    status: u16,
    response_body: &[u8],
) -> Result<SignedRelayRecord, RecordError> {
    let signed = SignedRelayRecord::decode_bytes(record)?;
    signed.verify(client)?;
    if let Some(field) = signed.body().mismatch(request, status, response_body) {
        return Err(RecordError::Mismatch(field));
    }
    Ok(signed)
}

fn encode_headers(enc: &mut Encoder, headers: &[Header]) {
    enc.array(headers.len());
    for h in headers {
        enc.array(2);
        enc.text(&h.name);
        enc.bytes(&h.value);
    }
}

fn decode_headers(r: &mut Reader<'_>) -> Result<Vec<Header>, DecodeError> {
    let start = r.offset();
    let n = r.array()?;
    if n > MAX_HEADERS {
        return Err(err_at(start, DecodeErrorKind::TooLarge("too many headers")));
    }
    let mut total = 0usize;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        r.array_of(2)?;
        let name = r.text_max(MAX_HEADER_NAME_LEN, "header name")?;
        let value = r.bytes_max(MAX_HEADER_VALUE_LEN, "header value")?.to_vec();
        r.leave();
        total += name.len() + value.len();
        if total > MAX_HEADERS_LEN {
            return Err(err_at(start, DecodeErrorKind::TooLarge("headers")));
        }
        out.push(Header { name, value });
    }
    r.leave();
    Ok(out)
}

fn err_at(offset: usize, kind: DecodeErrorKind) -> DecodeError {
    DecodeError { offset, kind }
}

impl Canonical for RelayRequest {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(9);
        enc.u64(RELAY_VERSION);
        self.hire_id.encode(enc);
        enc.text(&self.slot);
        enc.bytes(&self.request_id);
        enc.text(&self.method);
        enc.text(&self.host);
        enc.text(&self.target);
        encode_headers(enc, &self.headers);
        enc.bytes(&self.body);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(9)?;
        r.version(RELAY_VERSION)?;
        let req = RelayRequest {
            hire_id: Hash::decode(r)?,
            slot: r.text_max(MAX_SLOT_NAME, "slot name")?,
            request_id: r.array_bytes()?,
            method: r.text_max(MAX_METHOD, "method")?,
            host: r.text_max(MAX_HOST, "host")?,
            target: r.text_max(MAX_TARGET_LEN, "request target")?,
            headers: decode_headers(r)?,
            body: r
                .bytes_max(MAX_RELAY_REQUEST_BODY, "request body")?
                .to_vec(),
        };
        r.leave();
        Ok(req)
    }
}

impl Canonical for RelayReply {
    fn encode(&self, enc: &mut Encoder) {
        match self {
            RelayReply::Response {
                status,
                headers,
                body,
                record,
            } => {
                enc.array(6);
                enc.u64(RELAY_VERSION);
                enc.u64(0);
                enc.u64(u64::from(*status));
                encode_headers(enc, headers);
                enc.bytes(body);
                enc.bytes(record);
            }
            RelayReply::Denied {
                code,
                message,
                retry,
            } => {
                enc.array(5);
                enc.u64(RELAY_VERSION);
                enc.u64(1);
                code.encode(enc);
                enc.text(message);
                enc.bool(*retry);
            }
        }
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.offset();
        let len = r.array()? as u64;
        r.version(RELAY_VERSION)?;
        let at = r.offset();
        let kind = r.u64()?;
        let want = match kind {
            0 => 6,
            1 => 5,
            _ => return Err(Reader::unknown_code(at, "relay reply", kind)),
        };
        if len != want {
            return Err(crate::credential::policy::wrong_arity(start, want, len));
        }
        let reply = if kind == 0 {
            let at = r.offset();
            let status = u16::try_from(r.u64()?)
                .map_err(|_| err_at(at, DecodeErrorKind::TooLarge("status exceeds u16")))?;
            RelayReply::Response {
                status,
                headers: decode_headers(r)?,
                body: r
                    .bytes_max(MAX_RELAY_RESPONSE_BODY, "response body")?
                    .to_vec(),
                record: r
                    .bytes_max(MAX_RELAY_RECORD_ENVELOPE_LEN, "relay record")?
                    .to_vec(),
            }
        } else {
            RelayReply::Denied {
                code: DenialCode::decode(r)?,
                message: r.text_max(MAX_DENIAL_MESSAGE_LEN, "denial message")?,
                retry: r.bool()?,
            }
        };
        r.leave();
        Ok(reply)
    }
}

impl Canonical for RelayRecord {
    fn encode(&self, enc: &mut Encoder) {
        enc.array(14);
        enc.u64(RELAY_VERSION);
        self.hire_id.encode(enc);
        enc.text(&self.slot);
        enc.bytes(&self.request_id);
        enc.text(&self.method);
        enc.text(&self.host);
        enc.text(&self.path);
        enc.u64(u64::from(self.status));
        enc.u64(self.request_bytes);
        enc.u64(self.response_bytes);
        self.request_hash.encode(enc);
        self.response_hash.encode(enc);
        enc.u64(self.started_at);
        enc.u64(self.duration_ms);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.array_of(14)?;
        r.version(RELAY_VERSION)?;
        let rec = RelayRecord {
            hire_id: Hash::decode(r)?,
            slot: r.text_max(MAX_SLOT_NAME, "slot name")?,
            request_id: r.array_bytes()?,
            method: r.text_max(MAX_METHOD, "method")?,
            host: r.text_max(MAX_HOST, "host")?,
            path: r.text_max(MAX_PATH_LEN, "path")?,
            status: r.u32()?,
            request_bytes: r.u64()?,
            response_bytes: r.u64()?,
            request_hash: Hash::decode(r)?,
            response_hash: Hash::decode(r)?,
            started_at: r.u64()?,
            duration_ms: r.u64()?,
        };
        r.leave();
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Keypair;

    fn request() -> RelayRequest {
        RelayRequest {
            hire_id: Hash::digest(b"hire"),
            slot: "crm".into(),
            request_id: [7; 16],
            method: "POST".into(),
            host: "api.example.com".into(),
            target: "/v1/contacts?limit=5".into(),
            headers: vec![Header {
                name: "content-type".into(),
                value: b"application/json".to_vec(),
            }],
            body: b"{\"q\":\"ada\"}".to_vec(),
        }
    }

    #[test]
    fn messages_round_trip() {
        let req = request();
        assert_eq!(req.validate(), Ok(()));
        assert_eq!(req.path(), "/v1/contacts");
        assert_eq!(RelayRequest::decode_bytes(&req.to_bytes()), Ok(req.clone()));
        let client = Keypair::from_seed(&[2; 32]);
        let record = Signed::sign(RelayRecord::for_exchange(&req, 200, b"[]", 5, 12), &client);
        let replies = [
            RelayReply::Response {
                status: 200,
                headers: vec![],
                body: b"[]".to_vec(),
                record: record.to_bytes(),
            },
            RelayReply::Denied {
                code: DenialCode::BudgetExhausted,
                message: "3 of 3 requests used".into(),
                retry: false,
            },
        ];
        for reply in replies {
            assert_eq!(reply.validate(), Ok(()));
            assert_eq!(RelayReply::decode_bytes(&reply.to_bytes()), Ok(reply));
        }
        assert_eq!(
            check_record(&record.to_bytes(), &client.id(), &req, 200, b"[]").map(|r| r.id()),
            Ok(record.id())
        );
        assert_eq!(
            check_record(&record.to_bytes(), &client.id(), &req, 200, b"[1]").err(),
            Some(RecordError::Mismatch("response_bytes"))
        );
        assert!(matches!(
            check_record(
                &record.to_bytes(),
                &Keypair::from_seed(&[3; 32]).id(),
                &req,
                200,
                b"[]"
            ),
            Err(RecordError::Envelope(SignedError::WrongSigner { .. }))
        ));
    }

    #[test]
    fn content_rules() {
        let mut r = request();
        r.headers.push(Header {
            name: "proxy-authorization".into(),
            value: b"Basic x".to_vec(),
        });
        assert_eq!(
            r.validate(),
            Err(RelayError::ForbiddenHeader("proxy-authorization".into()))
        );
        let mut r = request();
        r.headers[0].value = b"a\r\nx-injected: 1".to_vec();
        assert_eq!(
            r.validate(),
            Err(RelayError::InvalidHeaderValue("content-type".into()))
        );
        let mut r = request();
        r.headers[0].name = "Content-Type".into();
        assert!(matches!(
            r.validate(),
            Err(RelayError::InvalidHeaderName(_))
        ));
        let mut r = request();
        r.target = "http://x/".into();
        assert_eq!(r.validate(), Err(RelayError::InvalidTarget));
    }

    #[test]
    fn a_record_at_every_limit_fits_in_an_entry() {
        use crate::receipt::{CallMode, EntryKind, MAX_ENTRY_LEN, NetworkCall, ReceiptEntry};
        let host = format!("{}:65535", "a".repeat(253));
        let path = format!("/{}", "p".repeat(MAX_PATH_LEN - 1));
        let record = RelayRecord {
            hire_id: Hash::digest(b"h"),
            slot: "s".repeat(MAX_SLOT_NAME),
            request_id: [1; 16],
            method: "M".repeat(MAX_METHOD),
            host: host.clone(),
            path: path.clone(),
            status: u32::MAX,
            request_bytes: u64::MAX,
            response_bytes: u64::MAX,
            request_hash: Hash::digest(b"a"),
            response_hash: Hash::digest(b"b"),
            started_at: u64::MAX,
            duration_ms: u64::MAX,
        };
        let signed = Signed::sign(record, &Keypair::from_seed(&[2; 32]));
        assert!(signed.body_bytes().len() <= MAX_RELAY_RECORD_LEN);
        let envelope = signed.to_bytes();
        assert!(envelope.len() <= MAX_RELAY_RECORD_ENVELOPE_LEN);
        let entry = ReceiptEntry {
            hire_id: Hash::digest(b"h"),
            seq: u64::MAX,
            prev: Hash::digest(b"p"),
            time: u64::MAX,
            kind: EntryKind::NetworkCall(NetworkCall {
                host,
                method: "M".repeat(MAX_METHOD),
                path,
                status: u32::MAX,
                request_bytes: u64::MAX,
                response_bytes: u64::MAX,
                request_hash: Hash::digest(b"a"),
                response_hash: Hash::digest(b"b"),
                duration_ms: u64::MAX,
                slot: Some("s".repeat(MAX_SLOT_NAME)),
                mode: CallMode::Relayed,
                denial: Some(DenialCode::BadRequest),
                relay_record: Some(envelope),
            }),
            commitment: Some(Hash::digest(b"c")),
        };
        let bytes = encoding::encode(&entry);
        assert!(bytes.len() <= MAX_ENTRY_LEN, "{}", bytes.len());
        assert_eq!(encoding::decode(&bytes, MAX_ENTRY_LEN), Ok(entry));
    }

    #[test]
    fn header_budget_is_a_decoding_limit() {
        let mut r = request();
        r.headers = (0..9)
            .map(|i| Header {
                name: format!("x-h{i}"),
                value: vec![b'a'; MAX_HEADER_VALUE_LEN],
            })
            .collect();
        let err = RelayRequest::decode_bytes(&r.to_bytes())
            .err()
            .map(|e| e.kind);
        assert_eq!(err, Some(DecodeErrorKind::TooLarge("headers")));
    }
}
