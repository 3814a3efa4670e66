//! The JSON profile of a manifest's schema fields: exactly which texts rule M2 accepts as its
//! `input-schema` and `output-schema` (`spec/manifest.md`, "JSON texts").
//!
//! The profile is RFC 8259 JSON under the I-JSON restrictions of RFC 7493 (UTF-8, no
//! surrogates, no noncharacters, unique member names) with explicit limits: the top-level
//! value is an object, nesting is at most [`MAX_JSON_DEPTH`] levels, and a number is accepted
//! exactly when its decimal value is below 2^1024 − 2^970 in magnitude (when it rounds to a
//! finite IEEE 754 double). [`check_object`] decides it directly on the bytes, without a JSON
//! library, so the verdict depends on no parser's quirks (recursion limits, float parsing,
//! duplicate handling); every accepted text is also accepted by `serde_json`, which the node
//! uses afterwards to apply the schema.
//!
//! The checker validates only: it builds no value, and a schema is signed, hashed and stored
//! as the exact text the provider wrote.

use std::collections::HashSet;

/// Deepest nesting accepted: the top-level object is level 1, an array or object directly
/// inside it level 2, and so on; a value at level 65 is rejected.
pub const MAX_JSON_DEPTH: usize = 64;

/// The decimal digits of 2^1024 − 2^970 (309 digits, the last one non-zero): the smallest
/// magnitude that rounds to infinity (it is the midpoint between the largest finite double
/// and 2^1024, and the tie goes to even, here infinity).
const OVERFLOW_DIGITS: &[u8] = concat!(
    "1797693134862315807937289714053034150799341327100378269361737789804449682927647509466490",
    "1797758720709633028641669288791094655554785194040263065748867150582068190890200070838367",
    "6273854845817711531764475730270069855571366959622842914819860834936475292719074168444365",
    "510704342711559699508093042880177904174497792",
)
.as_bytes();

/// Why a text is not in the profile, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset}")]
pub struct JsonError {
    /// Byte offset in the text where the problem was found.
    pub offset: usize,
    /// What the problem is.
    pub kind: JsonErrorKind,
}

/// The ways a text can fail the profile. Which one is reported for a text that breaks
/// several rules is informative; that it fails is not.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonErrorKind {
    /// The bytes are not UTF-8 (RFC 3629).
    #[error("not valid UTF-8")]
    InvalidUtf8,
    /// The text ends in the middle of a value (or is empty).
    #[error("the text ends early")]
    UnexpectedEnd,
    /// The top-level value is not an object (or the text does not start with one: a
    /// byte-order mark, a character that is not JSON white space).
    #[error("the top-level value is not an object")]
    NotObject,
    /// A byte the grammar does not allow here (comments, trailing commas, `NaN`, single
    /// quotes, white space other than space, tab, LF and CR, ...).
    #[error("expected {0}")]
    Expected(&'static str),
    /// Something other than white space after the top-level object.
    #[error("content after the top-level object")]
    TrailingContent,
    /// An array or object at level [`MAX_JSON_DEPTH`] + 1.
    #[error("nesting deeper than {MAX_JSON_DEPTH} levels")]
    TooDeep,
    /// An unescaped character U+0000–U+001F in a string.
    #[error("unescaped control character in a string")]
    ControlCharacter,
    /// A `\` not followed by one of `" \ / b f n r t` or by `u` and four hex digits.
    #[error("invalid escape")]
    InvalidEscape,
    /// A `\u` escape of a surrogate that is not a high surrogate directly followed by an
    /// escaped low surrogate.
    #[error("unpaired surrogate escape")]
    LoneSurrogate,
    /// A Unicode noncharacter in a string, raw or escaped.
    #[error("noncharacter U+{0:04X} in a string")]
    Noncharacter(u32),
    /// A member name that occurs twice in one object (compared after unescaping).
    #[error("duplicate member name")]
    DuplicateName,
    /// A number that breaks the grammar (`01`, `1.`, `.5`, `+1`, `-`, `1e`).
    #[error("malformed number")]
    InvalidNumber,
    /// A number whose magnitude is at least 2^1024 − 2^970 (it rounds to infinity).
    #[error("number out of the double range")]
    NumberOutOfRange,
}

/// Checks that `text` is a JSON text of the manifest profile whose top-level value is an
/// object (`spec/manifest.md`, "JSON texts").
pub fn check_object(text: &[u8]) -> Result<(), JsonError> {
    let text = std::str::from_utf8(text).map_err(|e| JsonError {
        offset: e.valid_up_to(),
        kind: JsonErrorKind::InvalidUtf8,
    })?;
    let mut p = Parser {
        text,
        bytes: text.as_bytes(),
        pos: 0,
    };
    p.ws();
    match p.peek() {
        None => return Err(p.err(JsonErrorKind::UnexpectedEnd)),
        Some(b'{') => p.object(1)?,
        Some(_) => return Err(p.err(JsonErrorKind::NotObject)),
    }
    p.ws();
    if p.pos != p.bytes.len() {
        return Err(p.err(JsonErrorKind::TrailingContent));
    }
    Ok(())
}

/// Whether `c` is a Unicode noncharacter: U+FDD0–U+FDEF, or the last two code points of a
/// plane (U+xFFFE, U+xFFFF).
pub fn is_noncharacter(c: u32) -> bool {
    (0xFDD0..=0xFDEF).contains(&c) || (c & 0xFFFE) == 0xFFFE
}

/// Whether a number literal's value, rounded to the nearest double (ties to even), is
/// finite: its magnitude is below 2^1024 − 2^970. Decided on the decimal digits, exactly.
///
/// `int` and `frac` are the digits before and after the point (`frac` may be empty); `exp`
/// the exponent's digits (empty: no exponent), negative when `exp_negative`.
fn rounds_to_finite(int: &[u8], frac: &[u8], exp_negative: bool, exp: &[u8]) -> bool {
    let digits = || int.iter().chain(frac.iter()).copied();
    let Some(first) = digits().position(|d| d != b'0') else {
        return true; // zero, whatever the exponent
    };
    // Saturate the exponent: only whether the magnitude is below, at or above 10^308 matters,
    // and the digit count is bounded by the text's length (usize).
    const CAP: i128 = 1 << 80;
    let e = exp
        .iter()
        .fold(0i128, |acc, d| (acc * 10 + i128::from(d - b'0')).min(CAP));
    let e = if exp_negative { -e } else { e };
    // The value is 0.d₁d₂… × 10^point, d₁ the first non-zero digit.
    let point = int.len() as i128 - first as i128 + e;
    match point.cmp(&(OVERFLOW_DIGITS.len() as i128)) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => {
            let significant: Vec<u8> = digits().skip(first).collect();
            let end = significant
                .iter()
                .rposition(|d| *d != b'0')
                .map_or(0, |i| i + 1);
            // Compared as decimal fractions: below the threshold exactly when the first
            // differing digit is smaller, or the digits are a proper prefix of it.
            significant[..end] < *OVERFLOW_DIGITS
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err(&self, kind: JsonErrorKind) -> JsonError {
        JsonError {
            offset: self.pos,
            kind,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// The next byte, or an `UnexpectedEnd` error.
    fn next_byte(&self) -> Result<u8, JsonError> {
        self.peek()
            .ok_or_else(|| self.err(JsonErrorKind::UnexpectedEnd))
    }

    /// Skips JSON white space: space, tab, LF, CR and nothing else.
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), JsonError> {
        if self.next_byte()? != byte {
            return Err(self.err(JsonErrorKind::Expected(what)));
        }
        self.pos += 1;
        Ok(())
    }

    /// One value at nesting level `level` (the level an array or object here would have).
    fn value(&mut self, level: usize) -> Result<(), JsonError> {
        match self.next_byte()? {
            b'{' => self.object(level),
            b'[' => self.array(level),
            b'"' => self.string(None),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => Err(self.err(JsonErrorKind::Expected("a value"))),
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), JsonError> {
        if !self.bytes[self.pos..].starts_with(word) {
            return Err(self.err(JsonErrorKind::Expected("a value")));
        }
        self.pos += word.len();
        Ok(())
    }

    fn enter(&self, level: usize) -> Result<(), JsonError> {
        if level > MAX_JSON_DEPTH {
            return Err(self.err(JsonErrorKind::TooDeep));
        }
        Ok(())
    }

    fn object(&mut self, level: usize) -> Result<(), JsonError> {
        self.enter(level)?;
        self.pos += 1; // '{'
        self.ws();
        if self.next_byte()? == b'}' {
            self.pos += 1;
            return Ok(());
        }
        let mut names = HashSet::new();
        loop {
            if self.next_byte()? != b'"' {
                return Err(self.err(JsonErrorKind::Expected("a member name")));
            }
            let at = self.pos;
            let mut name = String::new();
            self.string(Some(&mut name))?;
            if !names.insert(name) {
                return Err(JsonError {
                    offset: at,
                    kind: JsonErrorKind::DuplicateName,
                });
            }
            self.ws();
            self.expect(b':', "':'")?;
            self.ws();
            self.value(level + 1)?;
            self.ws();
            match self.next_byte()? {
                b',' => {
                    self.pos += 1;
                    self.ws();
                }
                b'}' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err(JsonErrorKind::Expected("',' or '}'"))),
            }
        }
    }

    fn array(&mut self, level: usize) -> Result<(), JsonError> {
        self.enter(level)?;
        self.pos += 1; // '['
        self.ws();
        if self.next_byte()? == b']' {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.value(level + 1)?;
            self.ws();
            match self.next_byte()? {
                b',' => {
                    self.pos += 1;
                    self.ws();
                }
                b']' => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err(JsonErrorKind::Expected("',' or ']'"))),
            }
        }
    }

    /// A string starting at its opening quote; its decoded content goes to `out` if given.
    fn string(&mut self, mut out: Option<&mut String>) -> Result<(), JsonError> {
        self.pos += 1; // '"'
        loop {
            let b = self.next_byte()?;
            let c = match b {
                b'"' => {
                    self.pos += 1;
                    return Ok(());
                }
                b'\\' => self.escape()?,
                0x00..=0x1f => return Err(self.err(JsonErrorKind::ControlCharacter)),
                0x20..=0x7f => {
                    self.pos += 1;
                    char::from(b)
                }
                _ => {
                    // The text is valid UTF-8, so a character starts here.
                    let c = self.text[self.pos..]
                        .chars()
                        .next()
                        .ok_or_else(|| self.err(JsonErrorKind::InvalidUtf8))?;
                    if is_noncharacter(u32::from(c)) {
                        return Err(self.err(JsonErrorKind::Noncharacter(u32::from(c))));
                    }
                    self.pos += c.len_utf8();
                    c
                }
            };
            if let Some(out) = out.as_deref_mut() {
                out.push(c);
            }
        }
    }

    /// An escape starting at its `\`; returns the character it stands for.
    fn escape(&mut self) -> Result<char, JsonError> {
        let start = self.pos;
        self.pos += 1;
        let c = match self.next_byte()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                self.pos += 1;
                let unit = self.hex4(start)?;
                let code = match unit {
                    0xDC00..=0xDFFF => return Err(self.lone_surrogate(start)),
                    0xD800..=0xDBFF => {
                        if !self.bytes[self.pos..].starts_with(b"\\u") {
                            return Err(self.lone_surrogate(start));
                        }
                        self.pos += 2;
                        let low = self.hex4(start)?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(self.lone_surrogate(start));
                        }
                        0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    _ => unit,
                };
                if is_noncharacter(code) {
                    return Err(JsonError {
                        offset: start,
                        kind: JsonErrorKind::Noncharacter(code),
                    });
                }
                // Not a surrogate and at most U+10FFFF, so a char.
                return char::from_u32(code).ok_or_else(|| self.lone_surrogate(start));
            }
            _ => {
                return Err(JsonError {
                    offset: start,
                    kind: JsonErrorKind::InvalidEscape,
                });
            }
        };
        self.pos += 1;
        Ok(c)
    }

    fn lone_surrogate(&self, start: usize) -> JsonError {
        JsonError {
            offset: start,
            kind: JsonErrorKind::LoneSurrogate,
        }
    }

    /// Four hex digits (either case) of a `\u` escape that started at `start`.
    fn hex4(&mut self, start: usize) -> Result<u32, JsonError> {
        let mut v = 0;
        for _ in 0..4 {
            let d = self
                .peek()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or(JsonError {
                    offset: start,
                    kind: JsonErrorKind::InvalidEscape,
                })?;
            v = v * 16 + d;
            self.pos += 1;
        }
        Ok(v)
    }

    /// `[-] int [frac] [exp]` with `int = 0 / [1-9] *DIGIT`, then the range rule.
    fn number(&mut self) -> Result<(), JsonError> {
        let start = self.pos;
        let malformed = |pos| JsonError {
            offset: pos,
            kind: JsonErrorKind::InvalidNumber,
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int = self.digits();
        if int.is_empty() || (int.len() > 1 && int[0] == b'0') {
            return Err(malformed(start));
        }
        let mut frac: &[u8] = &[];
        if self.peek() == Some(b'.') {
            self.pos += 1;
            frac = self.digits();
            if frac.is_empty() {
                return Err(malformed(start));
            }
        }
        let (mut exp_negative, mut exp): (bool, &[u8]) = (false, &[]);
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            match self.peek() {
                Some(b'-') => {
                    exp_negative = true;
                    self.pos += 1;
                }
                Some(b'+') => self.pos += 1,
                _ => {}
            }
            exp = self.digits();
            if exp.is_empty() {
                return Err(malformed(start));
            }
        }
        if !rounds_to_finite(int, frac, exp_negative, exp) {
            return Err(JsonError {
                offset: start,
                kind: JsonErrorKind::NumberOutOfRange,
            });
        }
        Ok(())
    }

    fn digits(&mut self) -> &'a [u8] {
        let bytes: &'a [u8] = self.bytes;
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        &bytes[start..self.pos]
    }
}

#[cfg(test)]
mod tests;
