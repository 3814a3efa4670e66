//! Finding and removing a secret (or its placeholder) in bytes, in every common encoding.
//!
//! Owns [`Scrubber`]: for each needle it matches
//! - the raw bytes, where any byte may also be written `%hh` (any case), `\u00hh` (JSON), `\/`
//!   for `/`, or `+` for a space: this covers raw, every percent-encoding flavour and JSON
//!   string escaping, mixed freely;
//! - hex, upper, lower or mixed case;
//! - base64, standard and URL-safe alphabets, padded or not, at each of the three byte
//!   alignments inside a longer base64 text (the characters fully determined by the needle).
//!
//! The proxy uses it to refuse requests that carry a secret outside its slot and to scrub
//! response headers and bodies. Needles and derived patterns are zeroized on drop; nothing
//! here logs or formats them.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use memchr::memmem;
use zeroize::Zeroizing;

/// What replaces every match.
pub const REDACTED: &[u8] = b"[REDACTED]";

/// Base64 fragments shorter than this are not searched for (they would match by chance).
const MIN_BASE64_CORE: usize = 6;
/// Rounds of scrubbing before giving up and replacing the whole input.
const MAX_ROUNDS: usize = 8;

enum Pattern {
    /// Raw with per-byte `%hh` / `\u00hh` / `\/` / `+` alternatives.
    Flexible(Zeroizing<Vec<u8>>),
    /// Hex digits of the needle, any case.
    Hex(Zeroizing<Vec<u8>>),
    /// An exact byte string (base64 cores).
    Exact(Zeroizing<Vec<u8>>),
}

/// Finds and removes needles (secrets, placeholders) in all their encodings.
pub struct Scrubber {
    patterns: Vec<Pattern>,
    marker: &'static [u8],
}

impl Scrubber {
    /// A scrubber for `needles`; empty needles are ignored.
    pub fn new(needles: &[&[u8]]) -> Scrubber {
        let mut patterns = Vec::new();
        let mut cores: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        for needle in needles.iter().filter(|n| !n.is_empty()) {
            patterns.push(Pattern::Flexible(Zeroizing::new(needle.to_vec())));
            patterns.push(Pattern::Hex(Zeroizing::new(needle.to_vec())));
            for core in base64_cores(needle) {
                if !cores.iter().any(|c| **c == *core) {
                    cores.push(core);
                }
            }
        }
        patterns.extend(cores.into_iter().map(Pattern::Exact));
        let mut scrubber = Scrubber {
            patterns,
            marker: REDACTED,
        };
        // The marker must not itself match a needle, or scrubbing would never settle.
        scrubber.marker = [REDACTED, b"[***]".as_slice()]
            .into_iter()
            .find(|m| !scrubber.contains(m))
            .unwrap_or(b"");
        scrubber
    }

    /// Whether `hay` contains any needle in any encoding.
    pub fn contains(&self, hay: &[u8]) -> bool {
        self.patterns.iter().any(|p| p.first_match(hay).is_some())
    }

    /// `hay` with every match replaced by [`REDACTED`] (or, for needles that match that marker
    /// itself, `[***]` or nothing); `None` when there was nothing to replace. Repeats until no
    /// match is left (a replacement can join two halves into a new match), and replaces the
    /// whole input with the marker if that does not settle.
    pub fn scrub(&self, hay: &[u8]) -> Option<Vec<u8>> {
        let mut ranges = self.ranges(hay);
        if ranges.is_empty() {
            return None;
        }
        let mut current = replace(hay, &ranges, self.marker);
        for _ in 1..MAX_ROUNDS {
            ranges = self.ranges(&current);
            if ranges.is_empty() {
                return Some(current);
            }
            current = replace(&current, &ranges, self.marker);
        }
        Some(self.marker.to_vec())
    }

    /// All match ranges, sorted and merged.
    fn ranges(&self, hay: &[u8]) -> Vec<(usize, usize)> {
        let mut all = Vec::new();
        for p in &self.patterns {
            p.all_matches(hay, &mut all);
        }
        all.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(all.len());
        for (s, e) in all {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }
}

fn replace(hay: &[u8], ranges: &[(usize, usize)], marker: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut at = 0;
    for &(s, e) in ranges {
        out.extend_from_slice(&hay[at..s]);
        out.extend_from_slice(marker);
        at = e;
    }
    out.extend_from_slice(&hay[at..]);
    out
}

impl Pattern {
    fn first_match(&self, hay: &[u8]) -> Option<(usize, usize)> {
        let mut found = None;
        self.scan(hay, &mut |s, e| {
            found = Some((s, e));
            false
        });
        found
    }

    fn all_matches(&self, hay: &[u8], out: &mut Vec<(usize, usize)>) {
        self.scan(hay, &mut |s, e| {
            out.push((s, e));
            true
        });
    }

    /// Calls `f(start, end)` for matches (not overlapping each other) until it returns false.
    fn scan(&self, hay: &[u8], f: &mut dyn FnMut(usize, usize) -> bool) {
        match self {
            Pattern::Exact(needle) => {
                for s in memmem::find_iter(hay, needle.as_slice()) {
                    if !f(s, s + needle.len()) {
                        return;
                    }
                }
            }
            Pattern::Flexible(needle) => {
                let first = needle[0];
                let mut next_free = 0;
                // A leading space may also be written `+`: then every position is a candidate.
                let candidates: Box<dyn Iterator<Item = usize>> = if first == b' ' {
                    Box::new(0..hay.len())
                } else {
                    Box::new(memchr::memchr3_iter(first, b'%', b'\\', hay))
                };
                for s in candidates {
                    if s < next_free {
                        continue;
                    }
                    if let Some(e) = match_flexible(hay, s, needle) {
                        next_free = e;
                        if !f(s, e) {
                            return;
                        }
                    }
                }
            }
            Pattern::Hex(needle) => {
                let hi = HEX_LOWER[usize::from(needle[0] >> 4)];
                let mut next_free = 0;
                for s in memchr::memchr2_iter(hi, hi.to_ascii_uppercase(), hay) {
                    if s < next_free {
                        continue;
                    }
                    if match_hex(hay, s, needle) {
                        let e = s + 2 * needle.len();
                        next_free = e;
                        if !f(s, e) {
                            return;
                        }
                    }
                }
            }
        }
    }
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

fn hex_val(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn hex_byte(hay: &[u8], at: usize) -> Option<u8> {
    let hi = hex_val(*hay.get(at)?)?;
    let lo = hex_val(*hay.get(at + 1)?)?;
    Some(hi * 16 + lo)
}

fn match_hex(hay: &[u8], start: usize, needle: &[u8]) -> bool {
    needle
        .iter()
        .enumerate()
        .all(|(k, &b)| hex_byte(hay, start + 2 * k) == Some(b))
}

/// Matches `needle` at `start`, each byte raw or in one of its escaped forms. Returns the end
/// of the longest match. Tracks every reachable position, so `%` or `\` in the needle cannot
/// make it miss a match.
fn match_flexible(hay: &[u8], start: usize, needle: &[u8]) -> Option<usize> {
    let mut positions = vec![start];
    let mut next = Vec::with_capacity(4);
    for &b in needle {
        next.clear();
        for &p in &positions {
            let Some(&c) = hay.get(p) else { continue };
            if c == b {
                next.push(p + 1);
            }
            if c == b'%' && hex_byte(hay, p + 1) == Some(b) {
                next.push(p + 3);
            }
            if c == b'\\' {
                if hay.get(p + 1) == Some(&b'/') && b == b'/' {
                    next.push(p + 2);
                }
                if matches!(hay.get(p + 1), Some(b'u' | b'U'))
                    && hex_byte(hay, p + 2) == Some(0)
                    && hex_byte(hay, p + 4) == Some(b)
                {
                    next.push(p + 6);
                }
            }
            if c == b'+' && b == b' ' {
                next.push(p + 1);
            }
        }
        if next.is_empty() {
            return None;
        }
        next.sort_unstable();
        next.dedup();
        std::mem::swap(&mut positions, &mut next);
    }
    positions.last().copied()
}

/// The base64 characters fully determined by `needle` when it starts at byte offset 0, 1 or 2
/// of a 3-byte group, in both alphabets (padding never falls inside these characters).
fn base64_cores(needle: &[u8]) -> Vec<Zeroizing<Vec<u8>>> {
    let mut cores = Vec::new();
    let n = needle.len();
    for k in 0..3 {
        let mut input = Zeroizing::new(vec![0u8; k]);
        input.extend_from_slice(needle);
        input.extend_from_slice(&[0, 0]);
        let first = (8 * k).div_ceil(6);
        let end = 8 * (k + n) / 6;
        if end < first + MIN_BASE64_CORE {
            continue;
        }
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = Zeroizing::new(engine.encode(input.as_slice()));
            let core = Zeroizing::new(encoded.as_bytes()[first..end].to_vec());
            if !cores.iter().any(|c: &Zeroizing<Vec<u8>>| **c == *core) {
                cores.push(core);
            }
        }
    }
    cores
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &[u8] = b"sk-live/4f9+Q x%Z";

    fn scrubbed(hay: &[u8]) -> Vec<u8> {
        Scrubber::new(&[S])
            .scrub(hay)
            .unwrap_or_else(|| hay.to_vec())
    }

    fn b64(engine: &impl base64::Engine, bytes: &[u8]) -> Vec<u8> {
        engine.encode(bytes).into_bytes()
    }

    #[test]
    fn raw_and_escaped_forms() {
        let enc: Vec<u8> = S
            .iter()
            .flat_map(|b| format!("%{b:02x}").into_bytes())
            .collect();
        let json = br#"{"k":"sk-live\/4f9+Q x%Z"}"#;
        let unicode = br"sk-live\u002f4f9\u002BQ x%Z";
        let form = b"sk-live%2F4f9%2BQ+x%25Z";
        for hay in [
            S.to_vec(),
            enc,
            json.to_vec(),
            unicode.to_vec(),
            form.to_vec(),
        ] {
            let out = scrubbed(&hay);
            assert!(
                out.windows(REDACTED.len()).any(|w| w == REDACTED),
                "{hay:?}"
            );
            assert!(!Scrubber::new(&[S]).contains(&out), "{out:?}");
        }
    }

    #[test]
    fn hex_any_case() {
        let lower: String = S.iter().map(|b| format!("{b:02x}")).collect();
        let upper = lower.to_uppercase();
        for h in [lower, upper] {
            let hay = format!("id={h};");
            assert_eq!(scrubbed(hay.as_bytes()), b"id=[REDACTED];");
        }
    }

    #[test]
    fn base64_at_every_alignment() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        for pre in 0..3usize {
            for post in 0..3usize {
                let mut data = vec![0xAB; pre];
                data.extend_from_slice(S);
                data.extend(std::iter::repeat_n(0xCD, post));
                for engine in [&STANDARD, &URL_SAFE] {
                    let enc = b64(engine, &data);
                    let out = scrubbed(&enc);
                    assert_ne!(out, enc, "pre {pre} post {post}");
                    assert!(!Scrubber::new(&[S]).contains(&out));
                }
            }
        }
    }

    #[test]
    fn nothing_to_do() {
        assert!(Scrubber::new(&[S]).scrub(b"hello world").is_none());
        assert!(Scrubber::new(&[]).scrub(b"hello").is_none());
        assert!(Scrubber::new(&[b""]).scrub(b"hello").is_none());
    }

    #[test]
    fn replacement_that_recreates_a_match_settles() {
        // Scrubbing "x[REDACTED]" out of "xx[REDACTED]" leaves "x[REDACTED]" again.
        let needle = b"x[REDACTED]";
        let s = Scrubber::new(&[needle]);
        let out = s.scrub(b"xxxx[REDACTED]").unwrap_or_default();
        assert!(!s.contains(&out));
        // A needle inside the marker itself.
        for needle in [b"REDACTED".as_slice(), b"*", b"["] {
            let s = Scrubber::new(&[needle]);
            let out = s.scrub(b"a REDACTED [***] b").unwrap_or_default();
            assert!(!s.contains(&out), "{needle:?}: {out:?}");
        }
    }
}
