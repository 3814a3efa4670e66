//! The profile checker against its rules, and against an independent reference: `serde_json`
//! (correctly rounded with `float_roundtrip`) plus the profile's extra rules (unique names,
//! no noncharacters, the depth limit) applied by a serde visitor.

use std::collections::HashSet;
use std::fmt;

use proptest::prelude::*;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::{JsonErrorKind as K, MAX_JSON_DEPTH, check_object, is_noncharacter};

fn kind(text: &str) -> Option<K> {
    check_object(text.as_bytes()).err().map(|e| e.kind)
}

fn number(text: &str) -> bool {
    check_object(format!("{{\"n\":{text}}}").as_bytes()).is_ok()
}

/// `levels` levels: the top-level object, then `levels − 1` arrays.
fn nested_arrays(levels: usize) -> String {
    format!(
        "{{\"x\":{}0{}}}",
        "[".repeat(levels - 1),
        "]".repeat(levels - 1)
    )
}

/// `levels` nested objects.
fn nested_objects(levels: usize) -> String {
    format!(
        "{}{{}}{}",
        "{\"a\":".repeat(levels - 1),
        "}".repeat(levels - 1)
    )
}

#[test]
fn nesting_counts_the_top_level_object_as_level_one() {
    assert_eq!(kind(&nested_arrays(1)), None);
    assert_eq!(kind(&nested_arrays(MAX_JSON_DEPTH)), None);
    assert_eq!(kind(&nested_arrays(MAX_JSON_DEPTH + 1)), Some(K::TooDeep));
    assert_eq!(kind(&nested_objects(MAX_JSON_DEPTH)), None);
    assert_eq!(kind(&nested_objects(MAX_JSON_DEPTH + 1)), Some(K::TooDeep));
    // Far deeper than serde_json's recursion limit: rejected without recursing.
    assert_eq!(kind(&nested_arrays(100_000)), Some(K::TooDeep));
    // Scalars add no level.
    let deepest = nested_arrays(MAX_JSON_DEPTH).replace('0', "\"s\"");
    assert_eq!(kind(&deepest), None);
}

#[test]
fn every_edge_has_its_verdict() {
    let cases: &[(&str, Option<K>)] = &[
        ("{}", None),
        (" \t\r\n{ \t\r\n} \t\r\n", None),
        ("", Some(K::UnexpectedEnd)),
        ("[]", Some(K::NotObject)),
        ("\"x\"", Some(K::NotObject)),
        ("\u{feff}{}", Some(K::NotObject)),
        ("{}\u{feff}", Some(K::TrailingContent)),
        ("{} {}", Some(K::TrailingContent)),
        ("{}\u{a0}", Some(K::TrailingContent)),
        ("{\u{a0}}", Some(K::Expected("a member name"))),
        ("{\u{b}}", Some(K::Expected("a member name"))),
        ("{\u{c}}", Some(K::Expected("a member name"))),
        ("{\u{2028}}", Some(K::Expected("a member name"))),
        ("{\"a\":\u{85}1}", Some(K::Expected("a value"))),
        ("{\"a\":1,}", Some(K::Expected("a member name"))),
        ("{\"a\":[1,]}", Some(K::Expected("a value"))),
        ("{/**/}", Some(K::Expected("a member name"))),
        ("{} // c", Some(K::TrailingContent)),
        ("{'a':1}", Some(K::Expected("a member name"))),
        ("{a:1}", Some(K::Expected("a member name"))),
        ("{\"a\":NaN}", Some(K::Expected("a value"))),
        ("{\"a\":Infinity}", Some(K::Expected("a value"))),
        ("{\"a\":-Infinity}", Some(K::InvalidNumber)),
        ("{\"a\":True}", Some(K::Expected("a value"))),
        ("{\"a\":nul}", Some(K::Expected("a value"))),
        ("{\"a\":true,\"b\":false,\"c\":null}", None),
        ("{\"a\":01}", Some(K::InvalidNumber)),
        ("{\"a\":+1}", Some(K::Expected("a value"))),
        ("{\"a\":.5}", Some(K::Expected("a value"))),
        ("{\"a\":1.}", Some(K::InvalidNumber)),
        ("{\"a\":1e}", Some(K::InvalidNumber)),
        ("{\"a\":1e+}", Some(K::InvalidNumber)),
        ("{\"a\":-}", Some(K::InvalidNumber)),
        ("{\"a\":0x10}", Some(K::Expected("',' or '}'"))),
        ("{\"a\":-0}", None),
        ("{\"a\":1.0,\"b\":1,\"c\":1E+0,\"d\":10e-1}", None),
        ("{\"a\":1e400}", Some(K::NumberOutOfRange)),
        ("{\"a\":-1e400}", Some(K::NumberOutOfRange)),
        ("{\"a\":1e-400}", None),
        ("{\"a\":\"\\ud800\"}", Some(K::LoneSurrogate)),
        ("{\"a\":\"\\udc00\"}", Some(K::LoneSurrogate)),
        ("{\"a\":\"\\udc00\\ud800\"}", Some(K::LoneSurrogate)),
        ("{\"a\":\"\\ud800\\ud800\"}", Some(K::LoneSurrogate)),
        ("{\"a\":\"\\ud800x\"}", Some(K::LoneSurrogate)),
        ("{\"a\":\"\\ud800\\n\"}", Some(K::LoneSurrogate)),
        ("{\"a\":\"\\uD83D\\uDE00\"}", None),
        ("{\"a\":\"\\ud83d\\ude00\"}", None),
        ("{\"a\":\"\u{1f600}\"}", None),
        ("{\"a\":\"\\uffff\"}", Some(K::Noncharacter(0xFFFF))),
        ("{\"a\":\"\u{ffff}\"}", Some(K::Noncharacter(0xFFFF))),
        ("{\"a\":\"\\ufdd0\"}", Some(K::Noncharacter(0xFDD0))),
        ("{\"a\":\"\u{fdef}\"}", Some(K::Noncharacter(0xFDEF))),
        ("{\"a\":\"\\ud83f\\udffe\"}", Some(K::Noncharacter(0x1FFFE))),
        ("{\"a\":\"\u{10ffff}\"}", Some(K::Noncharacter(0x10FFFF))),
        ("{\"\u{fffe}\":1}", Some(K::Noncharacter(0xFFFE))),
        (
            "{\"a\":\"\u{fdcf}\u{fdf0}\u{fffd}\u{feff}\u{2028}\u{a0}\u{7f}\"}",
            None,
        ),
        ("{\"a\":\"\u{1}\"}", Some(K::ControlCharacter)),
        ("{\"a\":\"\t\"}", Some(K::ControlCharacter)),
        ("{\"a\":\"\\u0000\\u001f\\t\"}", None),
        ("{\"a\":\"\\x41\"}", Some(K::InvalidEscape)),
        ("{\"a\":\"\\U0041\"}", Some(K::InvalidEscape)),
        ("{\"a\":\"\\u00g1\"}", Some(K::InvalidEscape)),
        ("{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", None),
        ("{\"a\":1,\"a\":1}", Some(K::DuplicateName)),
        ("{\"a\":1,\"\\u0061\":2}", Some(K::DuplicateName)),
        ("{\"a\":{\"a\":1},\"b\":{\"a\":1}}", None),
        ("{\"\":1,\"\\u0000\":2}", None),
        ("{\"\u{e9}\":1,\"e\u{301}\":2}", None),
        ("{\"a\":1", Some(K::UnexpectedEnd)),
        ("{\"a\":\"x", Some(K::UnexpectedEnd)),
    ];
    for (text, want) in cases {
        assert_eq!(kind(text), *want, "{text:?}");
    }
}

#[test]
fn invalid_utf8_is_rejected_before_anything_else() {
    for bytes in [
        &b"{\"a\":\"\xff\"}"[..],
        b"{\"a\":\"\xc0\xaf\"}",
        b"{\"a\":\"\xed\xa0\x80\"}",
        b"{\"a\":\"\xf4\x90\x80\x80\"}",
        b"{\"a\":\"\xe2\x82\"}",
    ] {
        assert_eq!(
            check_object(bytes).err().map(|e| (e.kind, e.offset)),
            Some((K::InvalidUtf8, 6)),
            "{bytes:02x?}"
        );
    }
}

#[test]
fn noncharacters_are_the_66_code_points() {
    let all: Vec<u32> = (0..=0x10FFFF).filter(|c| is_noncharacter(*c)).collect();
    assert_eq!(all.len(), 66);
    assert_eq!(all[..32], (0xFDD0..=0xFDEF).collect::<Vec<_>>()[..]);
    assert!(!is_noncharacter(0xFFFD) && !is_noncharacter(0xFEFF) && !is_noncharacter(0x10FFFD));
}

/// The reference: serde_json decides the grammar, escapes, surrogates and numbers; this
/// visitor adds the top-level object, the depth limit, unique names and noncharacters.
struct Reference(usize);

/// Noncharacters as Unicode lists them (chapter 23.7), written out independently of
/// [`is_noncharacter`].
fn bad_str(s: &str) -> bool {
    let plane_ends: Vec<u32> = (0..=16u32)
        .flat_map(|plane| [plane * 0x10000 + 0xFFFE, plane * 0x10000 + 0xFFFF])
        .collect();
    s.chars()
        .map(u32::from)
        .any(|c| (0xFDD0..=0xFDEF).contains(&c) || plane_ends.contains(&c))
}

impl<'de> DeserializeSeed<'de> for Reference {
    type Value = bool;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Reference {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<bool, E> {
        if v.is_finite() {
            Ok(false)
        } else {
            Err(E::custom("infinite"))
        }
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        if bad_str(v) {
            return Err(E::custom("noncharacter"));
        }
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        if self.0 > MAX_JSON_DEPTH {
            return Err(de::Error::custom("too deep"));
        }
        while seq.next_element_seed(Reference(self.0 + 1))?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        if self.0 > MAX_JSON_DEPTH {
            return Err(de::Error::custom("too deep"));
        }
        let mut names = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if bad_str(&name) || !names.insert(name) {
                return Err(de::Error::custom("bad name"));
            }
            map.next_value_seed(Reference(self.0 + 1))?;
        }
        Ok(true)
    }
}

fn reference(text: &[u8]) -> bool {
    let mut d = serde_json::Deserializer::from_slice(text);
    matches!(Reference(1).deserialize(&mut d), Ok(true)) && d.end().is_ok()
}

/// Fragments of string content, as written in JSON source: valid and invalid escapes,
/// surrogates, noncharacters, controls, white-space look-alikes.
const STRING_PIECES: &[&str] = &[
    "a",
    "b",
    "\\u0061",
    "\\n",
    "\\/",
    "\\\"",
    "\\\\",
    "\\u0000",
    "\\ud83d\\ude00",
    "\u{1f600}",
    "\\ud800",
    "\\udc00",
    "\\udbff\\udfff",
    "\\ud83f\\udffe",
    "\u{ffff}",
    "\\uFFFE",
    "\u{fdd0}",
    "\\ufdef",
    "\u{fdcf}",
    "\u{1fffe}",
    "\u{2028}",
    "\u{a0}",
    "\u{feff}",
    "\u{7f}",
    "\u{1}",
    "\t",
    "\\x",
    "\\U0041",
    "\\u12",
    "\u{e9}",
    "e\u{301}",
];

/// Number literals: the grammar's edges and the range boundary.
const NUMBER_PIECES: &[&str] = &[
    "0",
    "-0",
    "01",
    "1.",
    ".5",
    "+1",
    "-",
    "1e",
    "1e+",
    "NaN",
    "Infinity",
    "1e400",
    "-1e309",
    "1e-400",
    "0e99999999999999999999",
    "1e99999999999999999999",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "1.7976931348623159e308",
    "18446744073709551616",
    "1E5",
    "2.5e-3",
];

/// White space between tokens: JSON's four, and characters that are not JSON white space.
const WS_PIECES: &[&str] = &[
    "", "", "", "", " ", "\t", "\n", "\r", "\u{a0}", "\u{b}", "\u{c}", "\u{2028}", "\u{feff}",
    "/**/",
];

#[derive(Debug, Clone)]
enum J {
    Lit(&'static str),
    Num(String),
    Str(Vec<usize>),
    Arr(Vec<J>),
    Obj(Vec<(Vec<usize>, J)>),
}

fn name() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        3 => (0usize..3).prop_map(|i| vec![i]),
        1 => proptest::collection::vec(0..STRING_PIECES.len(), 0..3),
    ]
}

fn tree() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        prop_oneof![
            Just("true"),
            Just("false"),
            Just("null"),
            Just("tru"),
            Just("nul")
        ]
        .prop_map(J::Lit),
        (0..NUMBER_PIECES.len()).prop_map(|i| J::Num(NUMBER_PIECES[i].into())),
        "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?".prop_map(J::Num),
        proptest::collection::vec(0..STRING_PIECES.len(), 0..4).prop_map(J::Str),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(J::Arr),
            proptest::collection::vec((name(), inner), 0..6).prop_map(J::Obj),
        ]
    })
}

fn space(ws: &mut impl Iterator<Item = usize>, out: &mut String) {
    out.push_str(WS_PIECES[ws.next().unwrap_or(0)]);
}

fn string(pieces: &[usize], out: &mut String) {
    out.push('"');
    for i in pieces {
        out.push_str(STRING_PIECES[*i]);
    }
    out.push('"');
}

/// Writes `j`, taking the white space between tokens from `ws` in turn.
fn write(j: &J, ws: &mut impl Iterator<Item = usize>, out: &mut String) {
    match j {
        J::Lit(s) => out.push_str(s),
        J::Num(s) => out.push_str(s),
        J::Str(p) => string(p, out),
        J::Arr(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(ws, out);
                write(item, ws, out);
                space(ws, out);
            }
            out.push(']');
        }
        J::Obj(members) => {
            out.push('{');
            for (i, (n, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(ws, out);
                string(n, out);
                space(ws, out);
                out.push(':');
                space(ws, out);
                write(v, ws, out);
            }
            space(ws, out);
            out.push('}');
        }
    }
}

fn text_of(members: Vec<(Vec<usize>, J)>, ws: Vec<usize>) -> String {
    let mut out = String::new();
    let mut ws = ws.into_iter().cycle();
    write(&J::Obj(members), &mut ws, &mut out);
    out
}

fn document() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec((name(), tree()), 0..5),
        proptest::collection::vec(
            prop_oneof![8 => Just(0usize), 2 => 0..WS_PIECES.len()],
            1..32,
        ),
    )
        .prop_map(|(members, ws)| text_of(members, ws))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Generated documents, mostly well-formed, with every kind of edge mixed in.
    #[test]
    fn agrees_with_the_reference_on_documents(text in document()) {
        prop_assert_eq!(check_object(text.as_bytes()).is_ok(), reference(text.as_bytes()), "{:?}", text);
    }

    /// Documents with one edit: a byte range removed or a token inserted.
    #[test]
    fn agrees_with_the_reference_on_edited_documents(
        text in document(),
        at in any::<prop::sample::Index>(),
        cut in 0usize..3,
        insert in prop_oneof![
            Just(""), Just(","), Just("{"), Just("}"), Just("["), Just("]"), Just("\""),
            Just(":"), Just("\\"), Just("1"), Just("e"), Just("-"), Just("\u{a0}"), Just("\u{ffff}"),
        ],
    ) {
        let bytes = text.as_bytes();
        let i = at.index(bytes.len() + 1);
        let j = (i + cut).min(bytes.len());
        let mut edited = bytes[..i].to_vec();
        edited.extend_from_slice(insert.as_bytes());
        edited.extend_from_slice(&bytes[j..]);
        prop_assert_eq!(check_object(&edited).is_ok(), reference(&edited), "{:?}", String::from_utf8_lossy(&edited));
    }

    /// Nesting around the limit, arrays and objects mixed.
    #[test]
    fn agrees_with_the_reference_on_deep_nesting(
        kinds in proptest::collection::vec(any::<bool>(), (MAX_JSON_DEPTH - 4)..(MAX_JSON_DEPTH + 4)),
    ) {
        let mut open = String::from("{\"x\":");
        let mut close = String::from("}");
        for array in &kinds {
            if *array {
                open.push('[');
                close.insert(0, ']');
            } else {
                open.push_str("{\"y\":");
                close.insert(0, '}');
            }
        }
        let text = format!("{open}1{close}");
        let want = kinds.len() < MAX_JSON_DEPTH;
        prop_assert_eq!(check_object(text.as_bytes()).is_ok(), want);
        prop_assert_eq!(reference(text.as_bytes()), want);
    }

    /// Arbitrary bytes: never a panic, and never accepted unless the reference accepts.
    #[test]
    fn agrees_with_the_reference_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..48),
        object in any::<bool>(),
    ) {
        let mut input = if object { b"{\"a\":".to_vec() } else { Vec::new() };
        input.extend_from_slice(&bytes);
        prop_assert_eq!(check_object(&input).is_ok(), reference(&input));
    }

    /// Near the overflow boundary, a number is accepted exactly when its correctly rounded
    /// double is finite (Rust's `f64` parser rounds correctly).
    #[test]
    fn numbers_overflow_exactly_when_they_round_to_infinity(
        negative in any::<bool>(),
        digits in "1797693134862315[6-9][0-9]{0,25}",
        exp in 307i32..=309,
    ) {
        let text = format!("{}{}.{}e{exp}", if negative { "-" } else { "" }, &digits[..1], &digits[1..]);
        let rounded: f64 = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(number(&text), rounded.is_finite(), "{}", text);
    }

    /// Any well-formed number: accepted exactly when its rounded value is finite.
    #[test]
    fn any_number_follows_correct_rounding(
        int in "-?(0|[1-9][0-9]{0,40})",
        frac in proptest::option::of("[0-9]{1,30}"),
        exp in proptest::option::of(-400i32..400),
        zeros in 0usize..320,
    ) {
        let mut text = int;
        if let Some(f) = frac { text = format!("{text}.{f}"); }
        if let Some(e) = exp { text = format!("{text}e{e}"); }
        let rounded: f64 = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(number(&text), rounded.is_finite(), "{}", text);
        // The same value with leading zeros in the fraction, or written as an integer.
        if !text.contains(['.', 'e']) && text != "0" && text != "-0" {
            let long = format!("{text}{}", "0".repeat(zeros));
            let rounded: f64 = long.parse().map_err(|e| TestCaseError::fail(format!("{long}: {e}")))?;
            prop_assert_eq!(number(&long), rounded.is_finite(), "{}", long);
            let small = format!("0.{}{}e{}", "0".repeat(zeros), text.trim_start_matches('-'), zeros + 320);
            let rounded: f64 = small.parse().map_err(|e| TestCaseError::fail(format!("{small}: {e}")))?;
            prop_assert_eq!(number(&small), rounded.is_finite(), "{}", small);
        }
    }
}
