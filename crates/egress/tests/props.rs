//! Property tests: the scrubber removes any secret in any position and encoding; path
//! normalisation (the protocol's, which the proxy checks and sends) is idempotent, canonical
//! and never lets a dot segment, an encoded separator or an encoded control through.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use common::forms;
use proptest::prelude::*;
use souk_egress::Scrubber;
use souk_protocol::credential::{PathError, normalize_path};

#[derive(Debug, Clone, Copy)]
enum Enc {
    Raw,
    Base64,
    Base64NoPad,
    Base64Url,
    Base64UrlNoPad,
    HexLower,
    HexUpper,
    PctAllUpper,
    PctAllLower,
    PctReserved,
    Form,
    JsonEscaped,
}

fn encode(enc: Enc, data: &[u8]) -> Vec<u8> {
    match enc {
        Enc::Raw => data.to_vec(),
        Enc::Base64 => STANDARD.encode(data).into_bytes(),
        Enc::Base64NoPad => STANDARD_NO_PAD.encode(data).into_bytes(),
        Enc::Base64Url => URL_SAFE.encode(data).into_bytes(),
        Enc::Base64UrlNoPad => URL_SAFE_NO_PAD.encode(data).into_bytes(),
        Enc::HexLower => hex::encode(data).into_bytes(),
        Enc::HexUpper => hex::encode_upper(data).into_bytes(),
        Enc::PctAllUpper => data
            .iter()
            .flat_map(|b| format!("%{b:02X}").into_bytes())
            .collect(),
        Enc::PctAllLower => data
            .iter()
            .flat_map(|b| format!("%{b:02x}").into_bytes())
            .collect(),
        Enc::PctReserved => {
            percent_encoding::percent_encode(data, percent_encoding::NON_ALPHANUMERIC)
                .collect::<String>()
                .into_bytes()
        }
        Enc::Form => data
            .iter()
            .flat_map(|&b| match b {
                b' ' => b"+".to_vec(),
                b if b.is_ascii_alphanumeric() || b"*-._".contains(&b) => vec![b],
                b => format!("%{b:02X}").into_bytes(),
            })
            .collect(),
        Enc::JsonEscaped => data
            .iter()
            .flat_map(|&b| match b {
                b'/' => b"\\/".to_vec(),
                b if b.is_ascii_graphic() && b != b'"' && b != b'\\' => vec![b],
                b => format!("\\u{b:04x}").into_bytes(),
            })
            .collect(),
    }
}

fn enc_strategy() -> impl Strategy<Value = Enc> {
    prop_oneof![
        Just(Enc::Raw),
        Just(Enc::Base64),
        Just(Enc::Base64NoPad),
        Just(Enc::Base64Url),
        Just(Enc::Base64UrlNoPad),
        Just(Enc::HexLower),
        Just(Enc::HexUpper),
        Just(Enc::PctAllUpper),
        Just(Enc::PctAllLower),
        Just(Enc::PctReserved),
        Just(Enc::Form),
        Just(Enc::JsonEscaped),
    ]
}

fn is_base64(enc: Enc) -> bool {
    matches!(
        enc,
        Enc::Base64 | Enc::Base64NoPad | Enc::Base64Url | Enc::Base64UrlNoPad
    )
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A secret embedded anywhere, in any encoding (for base64: inside a longer encoded text,
    /// at any byte alignment), is found, and the scrubbed output holds it in no encoding.
    #[test]
    fn scrub_removes_any_secret_in_any_encoding(
        secret in proptest::collection::vec(any::<u8>(), 8..48),
        before in proptest::collection::vec(any::<u8>(), 0..64),
        after in proptest::collection::vec(any::<u8>(), 0..64),
        inner_before in proptest::collection::vec(any::<u8>(), 0..5),
        inner_after in proptest::collection::vec(any::<u8>(), 0..5),
        enc in enc_strategy(),
        copies in 1usize..3,
    ) {
        let mut hay = before.clone();
        for _ in 0..copies {
            let mut data = Vec::new();
            if is_base64(enc) {
                data.extend_from_slice(&inner_before);
            }
            data.extend_from_slice(&secret);
            if is_base64(enc) {
                data.extend_from_slice(&inner_after);
            }
            hay.extend_from_slice(&encode(enc, &data));
            hay.extend_from_slice(&after);
        }
        let s = Scrubber::new(&[&secret]);
        prop_assert!(s.contains(&hay));
        let out = s.scrub(&hay).unwrap_or_else(|| hay.clone());
        prop_assert!(!s.contains(&out));
        for (name, form) in forms(&secret) {
            prop_assert!(!contains(&out, &form), "{} survived", name);
        }
        for e in [Enc::Raw, Enc::HexLower, Enc::HexUpper, Enc::PctAllUpper, Enc::JsonEscaped] {
            prop_assert!(!contains(&out, &encode(e, &secret)));
        }
    }

    /// Scrubbing never grows a clean input and is a fixpoint.
    #[test]
    fn scrub_is_a_fixpoint(
        secret in proptest::collection::vec(any::<u8>(), 1..24),
        hay in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let s = Scrubber::new(&[&secret]);
        let out = s.scrub(&hay).unwrap_or_else(|| hay.clone());
        prop_assert!(!s.contains(&out));
        prop_assert!(s.scrub(&out).is_none());
    }
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9._~-]{0,6}",
        1 => Just(".".to_owned()),
        1 => Just("..".to_owned()),
        1 => Just("%2e".to_owned()),
        1 => Just("%2E%2e".to_owned()),
        1 => Just("..;x".to_owned()),
        1 => "(%[0-9a-fA-F]{2}|[a-z:@!$&'()*+,;=]){0,4}",
        1 => Just("a%2Fb".to_owned()),
        1 => Just("%5c".to_owned()),
        1 => Just("%zz".to_owned()),
    ]
}

fn path() -> impl Strategy<Value = String> {
    proptest::collection::vec(segment(), 0..6).prop_map(|s| format!("/{}", s.join("/")))
}

fn pct_decode_unreserved(p: &str) -> String {
    percent_encoding::percent_decode_str(p)
        .decode_utf8_lossy()
        .into_owned()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn normalisation_is_canonical(p in path()) {
        match normalize_path(&p) {
            Ok(n) => {
                prop_assert!(n.starts_with('/'));
                prop_assert_eq!(normalize_path(&n), Ok(n.clone()), "idempotent");
                for seg in n.split('/') {
                    let base = seg.split(';').next().unwrap_or(seg);
                    prop_assert!(base != "." && base != "..", "dot segment in {}", n);
                }
                let lower = n.to_ascii_lowercase();
                prop_assert!(!lower.contains("%2f") && !lower.contains("%5c"));
                // Escapes left are of reserved, non-control characters, in uppercase hex.
                let b = n.as_bytes();
                for (i, _) in n.match_indices('%') {
                    let hexpair = &b[i + 1..i + 3];
                    prop_assert!(hexpair.iter().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
                    let v = u8::from_str_radix(std::str::from_utf8(hexpair).unwrap_or("zz"), 16);
                    let reserved = |v: u8| !(v.is_ascii_alphanumeric() || b"-._~".contains(&v));
                    prop_assert!(v.is_ok_and(|v| reserved(v) && v >= 0x20 && v != 0x7f));
                }
            }
            Err(e) => {
                // Refusals are explained by what the path holds.
                let decoded = pct_decode_unreserved(&p).to_ascii_lowercase();
                let lower = p.to_ascii_lowercase();
                let explained = match e {
                    PathError::DotSegment => decoded.split('/').any(|s| {
                        let base = s.split(';').next().unwrap_or(s);
                        base == "." || base == ".."
                    }),
                    PathError::EncodedSeparator => lower.contains("%2f") || lower.contains("%5c"),
                    PathError::EncodedControl => {
                        lower.contains("%0") || lower.contains("%1") || lower.contains("%7f")
                    }
                    PathError::BadPercentEncoding => p.contains('%'),
                    PathError::InvalidCharacter(b) => p.as_bytes().contains(&b),
                    PathError::NotAbsolute | PathError::QueryOrFragment | PathError::TooLong => {
                        false
                    }
                };
                prop_assert!(explained, "{:?} for {}", e, p);
            }
        }
    }

    /// Percent-encoding unreserved characters does not change the normalised path.
    #[test]
    fn encoding_unreserved_characters_changes_nothing(
        segs in proptest::collection::vec("[a-zA-Z0-9_~-]{1,6}", 1..5),
        mask in any::<u64>(),
    ) {
        let plain = format!("/{}", segs.join("/"));
        let mut encoded = String::new();
        for (i, c) in plain.chars().enumerate() {
            if c != '/' && mask >> (i % 64) & 1 == 1 {
                encoded.push_str(&format!("%{:02x}", c as u32));
            } else {
                encoded.push(c);
            }
        }
        prop_assert_eq!(normalize_path(&encoded), normalize_path(&plain));
        prop_assert_eq!(normalize_path(&plain), Ok(plain.clone()));
    }
}
