//! Canonical CBOR: the one byte form of every signed or hashed Souk object.
//!
//! Souk uses a small, strict subset of CBOR (RFC 8949), specified in `spec/encoding.md`:
//! unsigned integers, byte strings, text strings, arrays, `null`, `false` and `true`, always
//! with definite lengths and the shortest head. There are no maps, floats, tags or negative
//! integers, so there is no key-order question and exactly one encoding per value.
//!
//! Objects encode as fixed-shape arrays (a struct is an array of its fields in a specified
//! order). The [`Reader`] rejects every non-canonical head as it reads, and [`decode`]
//! additionally re-encodes the decoded value and compares it byte for byte with the input, so
//! `encode(decode(bytes)) == bytes` holds for everything this crate accepts.
//!
//! Why not serde + ciborium here: ciborium encodes structs as maps keyed by field-name
//! strings and decodes leniently (non-minimal heads, indefinite lengths). The tests check this
//! encoder against ciborium's output, so both agree on every byte we emit.

use std::fmt;

/// Major type 0: unsigned integer.
const MAJOR_UINT: u8 = 0;
/// Major type 2: byte string.
const MAJOR_BYTES: u8 = 2;
/// Major type 3: UTF-8 text string.
const MAJOR_TEXT: u8 = 3;
/// Major type 4: array.
const MAJOR_ARRAY: u8 = 4;
/// Major type 7: simple values (we allow only false, true and null).
const MAJOR_SIMPLE: u8 = 7;

const SIMPLE_FALSE: u8 = 20;
const SIMPLE_TRUE: u8 = 21;
const SIMPLE_NULL: u8 = 22;

/// Nesting deeper than this is rejected (Souk objects nest at most 6 levels).
pub const MAX_DEPTH: usize = 16;

/// What went wrong while decoding canonical CBOR, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct DecodeError {
    /// Byte offset in the input where the problem was found.
    pub offset: usize,
    /// What the problem is.
    pub kind: DecodeErrorKind,
}

/// The kinds of decoding failure. Every one of them means "not a canonical Souk object".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The input ended in the middle of an item.
    #[error("input ends early")]
    Truncated,
    /// Bytes remain after the top-level item.
    #[error("trailing bytes after the object")]
    TrailingBytes,
    /// An integer or length was not encoded in the shortest form.
    #[error("non-minimal integer or length encoding")]
    NonMinimal,
    /// An indefinite-length item (forbidden).
    #[error("indefinite-length item")]
    Indefinite,
    /// A major type or simple value outside Souk's subset (negative int, map, tag, float...).
    #[error("CBOR item outside the Souk subset (initial byte 0x{0:02x})")]
    Unsupported(u8),
    /// An item of the wrong type for this position.
    #[error("expected {expected}, found {found}")]
    UnexpectedType {
        /// What the schema requires here.
        expected: &'static str,
        /// What the input has.
        found: &'static str,
    },
    /// An array had the wrong number of elements for its fixed shape.
    #[error("expected an array of {expected} elements, found {found}")]
    WrongArity {
        /// Elements the shape requires.
        expected: u64,
        /// Elements present.
        found: u64,
    },
    /// A fixed-size byte string had the wrong length.
    #[error("expected {expected} bytes, found {found}")]
    WrongLength {
        /// Required length.
        expected: usize,
        /// Length present.
        found: usize,
    },
    /// A text string was not valid UTF-8.
    #[error("text string is not valid UTF-8")]
    InvalidUtf8,
    /// The object is larger than its type allows, or a length exceeds the remaining input.
    #[error("object too large: {0}")]
    TooLarge(&'static str),
    /// Nesting beyond [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    /// A version number this implementation does not know.
    #[error("unknown version {0}")]
    UnknownVersion(u64),
    /// A discriminant (kind code) this implementation does not know.
    #[error("unknown {what} code {code}")]
    UnknownCode {
        /// Which enumeration.
        what: &'static str,
        /// The code found.
        code: u64,
    },
    /// A public key that is not a canonical, prime-order ed25519 point.
    #[error("invalid or weak public key")]
    InvalidKey,
    /// Re-encoding the decoded value did not reproduce the input.
    #[error("not canonical: re-encoding differs from the input")]
    NotCanonical,
}

impl DecodeError {
    fn at(offset: usize, kind: DecodeErrorKind) -> Self {
        Self { offset, kind }
    }
}

/// A type with a canonical CBOR form.
pub trait Canonical: Sized {
    /// Appends the canonical encoding of `self`.
    fn encode(&self, enc: &mut Encoder);
    /// Reads one value, rejecting anything that is not the canonical form.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Encodes a value to its canonical bytes.
pub fn encode<T: Canonical>(value: &T) -> Vec<u8> {
    let mut enc = Encoder::new();
    value.encode(&mut enc);
    enc.into_bytes()
}

/// Decodes exactly one canonical value from `bytes`, which must be at most `max_len` long.
///
/// Rejects trailing bytes, non-canonical heads, and anything whose re-encoding differs from
/// the input.
pub fn decode<T: Canonical>(bytes: &[u8], max_len: usize) -> Result<T, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::at(
            max_len,
            DecodeErrorKind::TooLarge("exceeds the size limit for this object"),
        ));
    }
    let mut r = Reader::new(bytes);
    let value = T::decode(&mut r)?;
    r.finish()?;
    if encode(&value) != bytes {
        return Err(DecodeError::at(0, DecodeErrorKind::NotCanonical));
    }
    Ok(value)
}

/// Checks that `bytes` is exactly one item of the canonical subset, of any shape, at most
/// `max_len` long: the decoding rules of `spec/encoding.md` that do not depend on a type
/// (size, allowed items, shortest heads, lengths, UTF-8, nesting depth, no trailing bytes).
/// Every canonical Souk object passes; what its type adds (shape, field limits, versions,
/// codes, keys) is checked by [`decode`].
pub fn check_item(bytes: &[u8], max_len: usize) -> Result<(), DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::at(
            max_len,
            DecodeErrorKind::TooLarge("exceeds the size limit for this object"),
        ));
    }
    let mut r = Reader::new(bytes);
    r.any_item()?;
    r.finish()
}

/// Writes canonical CBOR items into a growing buffer.
#[derive(Debug, Default)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self {
            buf: Vec::with_capacity(256),
        }
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    fn head(&mut self, major: u8, arg: u64) {
        let m = major << 5;
        if arg < 24 {
            self.buf.push(m | arg as u8);
        } else if arg <= u64::from(u8::MAX) {
            self.buf.extend_from_slice(&[m | 24, arg as u8]);
        } else if arg <= u64::from(u16::MAX) {
            self.buf.push(m | 25);
            self.buf.extend_from_slice(&(arg as u16).to_be_bytes());
        } else if arg <= u64::from(u32::MAX) {
            self.buf.push(m | 26);
            self.buf.extend_from_slice(&(arg as u32).to_be_bytes());
        } else {
            self.buf.push(m | 27);
            self.buf.extend_from_slice(&arg.to_be_bytes());
        }
    }

    /// An unsigned integer.
    pub fn u64(&mut self, v: u64) {
        self.head(MAJOR_UINT, v);
    }

    /// A byte string.
    pub fn bytes(&mut self, v: &[u8]) {
        self.head(MAJOR_BYTES, v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    /// A text string.
    pub fn text(&mut self, v: &str) {
        self.head(MAJOR_TEXT, v.len() as u64);
        self.buf.extend_from_slice(v.as_bytes());
    }

    /// The head of an array of `len` elements; the caller then encodes the elements.
    pub fn array(&mut self, len: usize) {
        self.head(MAJOR_ARRAY, len as u64);
    }

    /// A boolean.
    pub fn bool(&mut self, v: bool) {
        self.buf
            .push((MAJOR_SIMPLE << 5) | if v { SIMPLE_TRUE } else { SIMPLE_FALSE });
    }

    /// `null`.
    pub fn null(&mut self) {
        self.buf.push((MAJOR_SIMPLE << 5) | SIMPLE_NULL);
    }

    /// A list of values as an array.
    pub fn list<T: Canonical>(&mut self, items: &[T]) {
        self.array(items.len());
        for item in items {
            item.encode(self);
        }
    }

    /// A list of text strings as an array.
    pub fn text_list(&mut self, items: &[String]) {
        self.array(items.len());
        for item in items {
            self.text(item);
        }
    }

    /// An optional value: the value itself, or `null`.
    pub fn option<T: Canonical>(&mut self, v: Option<&T>) {
        match v {
            Some(v) => v.encode(self),
            None => self.null(),
        }
    }
}

/// A strict, zero-copy reader over canonical CBOR bytes.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
}

fn type_name(initial: u8) -> &'static str {
    match initial >> 5 {
        0 => "unsigned integer",
        1 => "negative integer",
        2 => "byte string",
        3 => "text string",
        4 => "array",
        5 => "map",
        6 => "tag",
        _ => match initial & 0x1f {
            SIMPLE_FALSE | SIMPLE_TRUE => "boolean",
            SIMPLE_NULL => "null",
            _ => "simple or float",
        },
    }
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    /// Current byte offset.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// Fails unless every byte has been consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.pos != self.buf.len() {
            return Err(self.err(DecodeErrorKind::TrailingBytes));
        }
        Ok(())
    }

    /// An error at the current offset.
    pub fn err(&self, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::at(self.pos, kind)
    }

    fn peek(&self) -> Result<u8, DecodeError> {
        self.buf
            .get(self.pos)
            .copied()
            .ok_or_else(|| self.err(DecodeErrorKind::Truncated))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or_else(|| self.err(DecodeErrorKind::Truncated))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// Reads a head of the expected major type and returns its argument.
    fn head(&mut self, major: u8, expected: &'static str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let initial = self.peek()?;
        if initial >> 5 != major {
            return Err(self.err(DecodeErrorKind::UnexpectedType {
                expected,
                found: type_name(initial),
            }));
        }
        self.pos += 1;
        let info = initial & 0x1f;
        let (arg, min) = match info {
            0..=23 => (u64::from(info), 0),
            24 => (u64::from(self.take(1)?[0]), 24),
            25 => {
                let b = self.take(2)?;
                (u64::from(u16::from_be_bytes([b[0], b[1]])), 0x100)
            }
            26 => {
                let b = self.take(4)?;
                (
                    u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
                    0x1_0000,
                )
            }
            27 => {
                let b = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                (u64::from_be_bytes(a), 0x1_0000_0000)
            }
            31 => return Err(DecodeError::at(start, DecodeErrorKind::Indefinite)),
            _ => {
                return Err(DecodeError::at(
                    start,
                    DecodeErrorKind::Unsupported(initial),
                ));
            }
        };
        if arg < min {
            return Err(DecodeError::at(start, DecodeErrorKind::NonMinimal));
        }
        Ok(arg)
    }

    fn len_arg(&mut self, major: u8, expected: &'static str) -> Result<usize, DecodeError> {
        let arg = self.head(major, expected)?;
        let remaining = (self.buf.len() - self.pos) as u64;
        // Every element or byte takes at least one byte, so a length beyond what is left is a lie.
        if arg > remaining {
            return Err(self.err(DecodeErrorKind::Truncated));
        }
        Ok(arg as usize)
    }

    /// An unsigned integer.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.head(MAJOR_UINT, "unsigned integer")
    }

    /// An unsigned integer that must fit in `u32`.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let v = self.u64()?;
        u32::try_from(v).map_err(|_| self.err(DecodeErrorKind::TooLarge("integer exceeds u32")))
    }

    /// A byte string, borrowed from the input.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.len_arg(MAJOR_BYTES, "byte string")?;
        self.take(len)
    }

    /// A byte string of at most `max` bytes (`what` names it in the error).
    pub fn bytes_max(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        let b = self.bytes()?;
        if b.len() > max {
            return Err(DecodeError::at(at, DecodeErrorKind::TooLarge(what)));
        }
        Ok(b)
    }

    /// A byte string of exactly `N` bytes.
    pub fn array_bytes<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let start = self.pos;
        let b = self.bytes()?;
        <[u8; N]>::try_from(b).map_err(|_| {
            DecodeError::at(
                start,
                DecodeErrorKind::WrongLength {
                    expected: N,
                    found: b.len(),
                },
            )
        })
    }

    /// A text string, borrowed from the input.
    pub fn text(&mut self) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let len = self.len_arg(MAJOR_TEXT, "text string")?;
        let raw = self.take(len)?;
        std::str::from_utf8(raw).map_err(|_| DecodeError::at(start, DecodeErrorKind::InvalidUtf8))
    }

    /// A text string of at most `max` bytes, as an owned `String`.
    pub fn text_max(&mut self, max: usize, what: &'static str) -> Result<String, DecodeError> {
        let start = self.pos;
        let s = self.text()?;
        if s.len() > max {
            return Err(DecodeError::at(start, DecodeErrorKind::TooLarge(what)));
        }
        Ok(s.to_owned())
    }

    /// The head of an array; returns its length. Call [`Reader::leave`] after its elements.
    pub fn array(&mut self) -> Result<usize, DecodeError> {
        let len = self.len_arg(MAJOR_ARRAY, "array")?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err(DecodeErrorKind::TooDeep));
        }
        Ok(len)
    }

    /// The head of an array that must have exactly `n` elements.
    pub fn array_of(&mut self, n: u64) -> Result<(), DecodeError> {
        let start = self.pos;
        let len = self.array()? as u64;
        if len != n {
            return Err(DecodeError::at(
                start,
                DecodeErrorKind::WrongArity {
                    expected: n,
                    found: len,
                },
            ));
        }
        Ok(())
    }

    /// Marks the end of an array entered with [`Reader::array`] or [`Reader::array_of`].
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// A boolean.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        let b = self.peek()?;
        let v = match b {
            x if x == (MAJOR_SIMPLE << 5) | SIMPLE_FALSE => false,
            x if x == (MAJOR_SIMPLE << 5) | SIMPLE_TRUE => true,
            other => {
                return Err(self.err(DecodeErrorKind::UnexpectedType {
                    expected: "boolean",
                    found: type_name(other),
                }));
            }
        };
        self.pos += 1;
        Ok(v)
    }

    /// Consumes a `null` if one is next and returns whether it did.
    pub fn null(&mut self) -> Result<bool, DecodeError> {
        if self.peek()? == (MAJOR_SIMPLE << 5) | SIMPLE_NULL {
            self.pos += 1;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// An optional value: `null` or the value.
    pub fn option<T: Canonical>(&mut self) -> Result<Option<T>, DecodeError> {
        if self.null()? {
            Ok(None)
        } else {
            T::decode(self).map(Some)
        }
    }

    /// A list of at most `max` values.
    pub fn list<T: Canonical>(
        &mut self,
        max: usize,
        what: &'static str,
    ) -> Result<Vec<T>, DecodeError> {
        let start = self.pos;
        let len = self.array()?;
        if len > max {
            return Err(DecodeError::at(start, DecodeErrorKind::TooLarge(what)));
        }
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(T::decode(self)?);
        }
        self.leave();
        Ok(out)
    }

    /// A list of at most `max` text strings, each at most `max_item` bytes.
    pub fn text_list(
        &mut self,
        max: usize,
        max_item: usize,
        what: &'static str,
    ) -> Result<Vec<String>, DecodeError> {
        let start = self.pos;
        let len = self.array()?;
        if len > max {
            return Err(DecodeError::at(start, DecodeErrorKind::TooLarge(what)));
        }
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            out.push(self.text_max(max_item, what)?);
        }
        self.leave();
        Ok(out)
    }

    /// Reads a version number and fails unless it is `expected`.
    pub fn version(&mut self, expected: u64) -> Result<(), DecodeError> {
        let start = self.pos;
        let v = self.u64()?;
        if v != expected {
            return Err(DecodeError::at(start, DecodeErrorKind::UnknownVersion(v)));
        }
        Ok(())
    }

    /// Reads one item of any allowed type, arrays with all their elements.
    fn any_item(&mut self) -> Result<(), DecodeError> {
        let initial = self.peek()?;
        match initial >> 5 {
            MAJOR_UINT => {
                self.u64()?;
            }
            MAJOR_BYTES => {
                self.bytes()?;
            }
            MAJOR_TEXT => {
                self.text()?;
            }
            MAJOR_ARRAY => {
                let len = self.array()?;
                for _ in 0..len {
                    self.any_item()?;
                }
                self.leave();
            }
            MAJOR_SIMPLE if matches!(initial & 0x1f, SIMPLE_FALSE | SIMPLE_TRUE | SIMPLE_NULL) => {
                self.pos += 1;
            }
            _ if initial & 0x1f == 31 => return Err(self.err(DecodeErrorKind::Indefinite)),
            _ => return Err(self.err(DecodeErrorKind::Unsupported(initial))),
        }
        Ok(())
    }

    /// An error for an unknown discriminant, pointing at `offset`.
    pub fn unknown_code(offset: usize, what: &'static str, code: u64) -> DecodeError {
        DecodeError::at(offset, DecodeErrorKind::UnknownCode { what, code })
    }
}

impl fmt::Display for Encoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.buf {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Canonical for u64 {
    fn encode(&self, enc: &mut Encoder) {
        enc.u64(*self);
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A tiny value tree covering the whole Souk subset, for cross-checking against ciborium.
    #[derive(Debug, Clone, PartialEq)]
    enum V {
        U(u64),
        B(Vec<u8>),
        T(String),
        A(Vec<V>),
        Bool(bool),
        Null,
    }

    impl Canonical for V {
        fn encode(&self, enc: &mut Encoder) {
            match self {
                V::U(v) => enc.u64(*v),
                V::B(v) => enc.bytes(v),
                V::T(v) => enc.text(v),
                V::A(items) => enc.list(items),
                V::Bool(b) => enc.bool(*b),
                V::Null => enc.null(),
            }
        }
        fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
            let b = r.peek()?;
            Ok(match b >> 5 {
                0 => V::U(r.u64()?),
                2 => V::B(r.bytes()?.to_vec()),
                3 => V::T(r.text()?.to_owned()),
                4 => V::A(r.list(usize::MAX, "array")?),
                _ => {
                    if r.null()? {
                        V::Null
                    } else {
                        V::Bool(r.bool()?)
                    }
                }
            })
        }
    }

    fn to_ciborium(v: &V) -> ciborium::Value {
        match v {
            V::U(x) => ciborium::Value::Integer((*x).into()),
            V::B(x) => ciborium::Value::Bytes(x.clone()),
            V::T(x) => ciborium::Value::Text(x.clone()),
            V::A(x) => ciborium::Value::Array(x.iter().map(to_ciborium).collect()),
            V::Bool(b) => ciborium::Value::Bool(*b),
            V::Null => ciborium::Value::Null,
        }
    }

    fn value() -> impl Strategy<Value = V> {
        let leaf = prop_oneof![
            any::<u64>().prop_map(V::U),
            (0u64..300).prop_map(V::U),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(V::B),
            ".{0,40}".prop_map(V::T),
            any::<bool>().prop_map(V::Bool),
            Just(V::Null),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            proptest::collection::vec(inner, 0..8).prop_map(V::A)
        })
    }

    proptest! {
        #[test]
        fn encoder_matches_ciborium(v in value()) {
            let ours = encode(&v);
            let mut theirs = Vec::new();
            ciborium::into_writer(&to_ciborium(&v), &mut theirs).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&ours, &theirs);
            prop_assert_eq!(decode::<V>(&ours, usize::MAX)?, v);
        }

        #[test]
        fn every_truncation_is_rejected(v in value()) {
            let bytes = encode(&v);
            for cut in 0..bytes.len() {
                prop_assert!(decode::<V>(&bytes[..cut], usize::MAX).is_err());
            }
        }

        /// The generic check accepts exactly what decodes as a value of the subset.
        #[test]
        fn check_item_agrees_with_decoding(bytes in proptest::collection::vec(any::<u8>(), 0..64), v in value()) {
            prop_assert_eq!(check_item(&bytes, usize::MAX).is_ok(), decode::<V>(&bytes, usize::MAX).is_ok());
            prop_assert_eq!(check_item(&encode(&v), usize::MAX), Ok(()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(v) = decode::<V>(&bytes, usize::MAX) {
                prop_assert_eq!(encode(&v), bytes);
            }
        }
    }

    #[test]
    fn rejects_non_minimal_heads() {
        // 1 encoded with a one-byte argument, then 0x100 as four bytes, an empty string in 2.
        for bad in [&[0x18, 0x01][..], &[0x1a, 0, 0, 1, 0], &[0x59, 0, 0]] {
            let err = decode::<V>(bad, usize::MAX).err();
            assert_eq!(
                err.map(|e| e.kind),
                Some(DecodeErrorKind::NonMinimal),
                "{bad:02x?}"
            );
        }
    }

    #[test]
    fn rejects_outside_subset() {
        let cases: &[(&[u8], DecodeErrorKind)] = &[
            (&[0x9f, 0x01, 0xff], DecodeErrorKind::Indefinite),
            (&[0x5f, 0x41, 0x00, 0xff], DecodeErrorKind::Indefinite),
            (&[0xa0], DecodeErrorKind::Unsupported(0xa0)),
            (&[0x20], DecodeErrorKind::Unsupported(0x20)),
            (&[0xc2, 0x40], DecodeErrorKind::Unsupported(0xc2)),
            (&[0xf9, 0x3c, 0x00], DecodeErrorKind::Unsupported(0xf9)),
            (&[0x1c], DecodeErrorKind::Unsupported(0x1c)),
            (&[0x01, 0x01], DecodeErrorKind::TrailingBytes),
            (&[0x62, 0xc3, 0x28], DecodeErrorKind::InvalidUtf8),
            (&[0x5a, 0xff, 0xff, 0xff, 0xff], DecodeErrorKind::Truncated),
        ];
        for (bytes, kind) in cases {
            let err = decode::<V>(bytes, usize::MAX).err().map(|e| e.kind);
            // Reading a map/tag/neg-int head through the V decoder reports an unexpected type;
            // through the head reader it reports Unsupported. Both are rejections.
            assert!(err.is_some(), "{bytes:02x?} accepted");
            if matches!(kind, DecodeErrorKind::Unsupported(_)) {
                continue;
            }
            assert_eq!(err.as_ref(), Some(kind), "{bytes:02x?}");
        }
    }

    #[test]
    fn rejects_excess_depth() {
        let mut bytes = vec![0x81; MAX_DEPTH + 1];
        bytes.push(0x00);
        let err = decode::<V>(&bytes, usize::MAX).err().map(|e| e.kind);
        assert_eq!(err, Some(DecodeErrorKind::TooDeep));
    }

    /// The top-level array is level 1: 16 nested arrays decode, the 17th level does not;
    /// items that are not arrays add no level.
    #[test]
    fn depth_counts_the_top_level_array_as_level_one() {
        let nest = |levels: usize| {
            let mut bytes = vec![0x81; levels];
            bytes.push(0x00);
            bytes
        };
        assert!(decode::<V>(&nest(MAX_DEPTH), usize::MAX).is_ok());
        let err = decode::<V>(&nest(MAX_DEPTH + 1), usize::MAX).err();
        assert_eq!(
            err.map(|e| (e.kind, e.offset)),
            Some((DecodeErrorKind::TooDeep, MAX_DEPTH + 1))
        );
        // A top-level item that is not an array is at level 0: an unsigned integer decodes.
        assert_eq!(decode::<V>(&[0x00], usize::MAX), Ok(V::U(0)));
    }

    #[test]
    fn check_item_counts_depth_like_typed_decoding() {
        let nest = |levels: usize| {
            let mut bytes = vec![0x81; levels];
            bytes.push(0x00);
            bytes
        };
        assert_eq!(check_item(&nest(MAX_DEPTH), usize::MAX), Ok(()));
        assert_eq!(
            check_item(&nest(MAX_DEPTH + 1), usize::MAX).map_err(|e| (e.kind, e.offset)),
            Err((DecodeErrorKind::TooDeep, MAX_DEPTH + 1))
        );
        assert_eq!(check_item(&[0x00], usize::MAX), Ok(()));
        for bad in [
            &[0xa0][..],
            &[0x20],
            &[0xc2, 0x40],
            &[0xf9, 0x3c, 0x00],
            &[0xff],
            &[0x9f, 0xff],
        ] {
            assert!(check_item(bad, usize::MAX).is_err(), "{bad:02x?}");
        }
    }

    #[test]
    fn size_limit_is_enforced_before_parsing() {
        let bytes = encode(&V::B(vec![0; 100]));
        let err = decode::<V>(&bytes, 50).err().map(|e| e.kind);
        assert!(matches!(err, Some(DecodeErrorKind::TooLarge(_))));
    }
}
