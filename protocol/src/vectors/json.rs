//! `manifest-json.json` (feature `vectors`): one schema text per edge of the JSON profile of
//! `spec/manifest.md` ("JSON texts"), each in the fixture manifest signed by the provider.
//!
//! The expected verdicts are written here from the profile's rules, not computed by the
//! checker, so the vector test compares the two.

use serde::Serialize;

use super::{hx, manifest_body, provider_key, raw_envelope};
use crate::encoding;
use crate::hash::Domain;
use crate::json::MAX_JSON_DEPTH;
use crate::signed::Signed;

/// One schema text and what rule M1/M2 says about the manifest carrying it.
#[derive(Serialize)]
pub(super) struct JsonVector {
    name: String,
    /// The `input-schema` text, when it is UTF-8 (`null` otherwise; `text_hex` is exact).
    text: Option<String>,
    /// The exact bytes of the `input-schema` text string.
    text_hex: String,
    /// Whether the manifest passes M1 and M2.
    valid: bool,
    /// The rule it breaks: `M1` (not UTF-8: the CBOR text string does not decode) or `M2`.
    rule: Option<&'static str>,
    /// The fixture manifest with that `input-schema`, signed by the provider.
    manifest: String,
}

/// `2^1024 − 2^970`: the midpoint between the largest finite double and `2^1024`, the
/// smallest magnitude that rounds to infinity (ties go to even, here infinity).
const OVERFLOW_THRESHOLD: &str = concat!(
    "1797693134862315807937289714053034150799341327100378269361737789804449682927647509466490",
    "1797758720709633028641669288791094655554785194040263065748867150582068190890200070838367",
    "6273854845817711531764475730270069855571366959622842914819860834936475292719074168444365",
    "510704342711559699508093042880177904174497792"
);

/// The texts that are valid UTF-8, with their verdicts.
fn text_cases() -> Vec<(String, String, bool)> {
    let mut out: Vec<(String, String, bool)> = Vec::new();
    let mut case = |name: &str, text: String, valid: bool| out.push((name.into(), text, valid));

    // Numbers: the range boundary (2^1024 − 2^970), then the grammar.
    let below = format!("{}1", &OVERFLOW_THRESHOLD[..OVERFLOW_THRESHOLD.len() - 1]);
    let numbers: Vec<(&str, String, bool)> = vec![
        (
            "number: largest finite double",
            "1.7976931348623157e308".into(),
            true,
        ),
        (
            "number: rounds down to the largest finite double",
            "1.7976931348623158e308".into(),
            true,
        ),
        (
            "number: threshold − 1 as a 309-digit integer (rounds down)",
            below.clone(),
            true,
        ),
        (
            "number: negative threshold − 1 (rounds down)",
            format!("-{below}"),
            true,
        ),
        (
            "number: the threshold 2^1024 − 2^970 exactly (a tie, rounds to even = infinity)",
            OVERFLOW_THRESHOLD.into(),
            false,
        ),
        (
            "number: negative threshold (rounds to −infinity)",
            format!("-{OVERFLOW_THRESHOLD}"),
            false,
        ),
        (
            "number: 1.7976931348623159e308, above the threshold",
            "1.7976931348623159e308".into(),
            false,
        ),
        (
            "number: 1.79769313486231581e308, just above the threshold",
            "1.79769313486231581e308".into(),
            false,
        ),
        ("number: 1e309", "1e309".into(), false),
        ("number: -1e309", "-1e309".into(), false),
        ("number: 1e400", "1e400".into(), false),
        ("number: -1e400", "-1e400".into(), false),
        (
            "number: exponent beyond 64 bits",
            "1e99999999999999999999".into(),
            false,
        ),
        (
            "number: zero with an exponent beyond 64 bits is zero",
            "0e99999999999999999999".into(),
            true,
        ),
        (
            "number: 0.00001e310 is 1e305 (leading zeros of the fraction count)",
            "0.00001e310".into(),
            true,
        ),
        ("number: 1e-400 underflows to zero", "1e-400".into(), true),
        ("number: smallest subnormal", "5e-324".into(), true),
        ("number: -0", "-0".into(), true),
        ("number: -0.0e-0", "-0.0e-0".into(), true),
        ("number: 1", "1".into(), true),
        (
            "number: 1.0 (a distinct text, also accepted)",
            "1.0".into(),
            true,
        ),
        ("number: 1E+2", "1E+2".into(), true),
        (
            "number: 2^53 + 1 (precision is not limited)",
            "9007199254740993".into(),
            true,
        ),
        ("number: u64 maximum", "18446744073709551615".into(), true),
        (
            "number: u64 maximum + 1",
            "18446744073709551616".into(),
            true,
        ),
        (
            "number: 40 significant digits",
            "3.141592653589793238462643383279502884197".into(),
            true,
        ),
        ("number: leading zero", "01".into(), false),
        ("number: leading plus", "+1".into(), false),
        ("number: no integer part", ".5".into(), false),
        ("number: no fraction digits", "1.".into(), false),
        ("number: no exponent digits", "1e".into(), false),
        ("number: hexadecimal", "0x10".into(), false),
        ("number: NaN", "NaN".into(), false),
        ("number: Infinity", "Infinity".into(), false),
        ("number: -Infinity", "-Infinity".into(), false),
    ];
    for (name, num, valid) in numbers {
        case(
            name,
            format!("{{\"type\":\"number\",\"maximum\":{num}}}"),
            valid,
        );
    }

    // Nesting: the top-level object is level 1.
    let arrays = |levels: usize| {
        format!(
            "{{\"x\":{}0{}}}",
            "[".repeat(levels - 1),
            "]".repeat(levels - 1)
        )
    };
    let objects = |levels: usize| {
        format!(
            "{}{{}}{}",
            "{\"a\":".repeat(levels - 1),
            "}".repeat(levels - 1)
        )
    };
    case(
        "depth: 64 levels, arrays in the top-level object",
        arrays(MAX_JSON_DEPTH),
        true,
    );
    case(
        "depth: 65 levels, arrays",
        arrays(MAX_JSON_DEPTH + 1),
        false,
    );
    case("depth: 64 levels, objects", objects(MAX_JSON_DEPTH), true);
    case(
        "depth: 65 levels, objects",
        objects(MAX_JSON_DEPTH + 1),
        false,
    );
    case("depth: 127 levels", arrays(127), false);

    // The top level.
    for (name, text, valid) in [
        ("top level: empty object", "{}", true),
        ("top level: array", "[]", false),
        ("top level: string", "\"x\"", false),
        ("top level: number", "1", false),
        ("top level: null", "null", false),
        ("top level: empty text", "", false),
        ("top level: white space only", " ", false),
        ("top level: two objects", "{}{}", false),
        (
            "top level: JSON white space around and inside",
            " \t\r\n{ \t\r\n\"a\" \t\r\n: \t\r\n[ \t\r\n1 \t\r\n, \t\r\n2 \t\r\n] \t\r\n} \t\r\n",
            true,
        ),
        ("byte-order mark before the object", "\u{feff}{}", false),
        ("byte-order mark after the object", "{}\u{feff}", false),
        ("U+FEFF inside a string", "{\"a\":\"\u{feff}\"}", true),
    ] {
        case(name, text.into(), valid);
    }

    // White space: only space, tab, LF and CR.
    for (name, ws) in [
        ("U+000B vertical tab", "\u{b}"),
        ("U+000C form feed", "\u{c}"),
        ("U+0085 next line", "\u{85}"),
        ("U+00A0 no-break space", "\u{a0}"),
        ("U+1680 ogham space mark", "\u{1680}"),
        ("U+2000 en quad", "\u{2000}"),
        ("U+200B zero width space", "\u{200b}"),
        ("U+2028 line separator", "\u{2028}"),
        ("U+2029 paragraph separator", "\u{2029}"),
        ("U+3000 ideographic space", "\u{3000}"),
    ] {
        case(
            &format!("white space: {name} between tokens"),
            format!("{{\"a\":{ws}1}}"),
            false,
        );
    }
    case(
        "white space: U+2028 and U+00A0 inside a string",
        "{\"a\":\"\u{2028}\u{a0}\"}".into(),
        true,
    );

    // Grammar: what RFC 8259 does not allow.
    for (name, text) in [
        ("trailing comma in an object", "{\"a\":1,}"),
        ("trailing comma in an array", "{\"a\":[1,]}"),
        ("block comment", "{/* c */}"),
        ("line comment", "{}// c"),
        ("single-quoted string", "{'a':1}"),
        ("unquoted member name", "{a:1}"),
        ("literal True", "{\"a\":True}"),
        ("missing value", "{\"a\":}"),
        ("unterminated string", "{\"a\":\"x}"),
    ] {
        case(&format!("grammar: {name}"), text.into(), false);
    }

    // Strings: escapes, surrogates, noncharacters, control characters.
    for (name, content, valid) in [
        ("all short escapes", "\\\"\\\\\\/\\b\\f\\n\\r\\t", true),
        ("escape \\x41", "\\x41", false),
        ("escape \\U0041", "\\U0041", false),
        ("escape with three hex digits", "\\u004", false),
        ("escape in upper-case hex", "\\u00E9", true),
        ("escaped U+0000", "\\u0000", true),
        ("escaped surrogate pair (U+1F600)", "\\ud83d\\ude00", true),
        ("raw U+1F600", "\u{1f600}", true),
        ("lone high surrogate, escaped", "\\ud800", false),
        ("lone low surrogate, escaped", "\\udc00", false),
        (
            "high surrogate before a non-surrogate escape",
            "\\ud800\\u0041",
            false,
        ),
        ("two high surrogates", "\\ud800\\ud800", false),
        ("surrogates in reverse order", "\\udc00\\ud800", false),
        ("high surrogate at the end of the string", "x\\udbff", false),
        ("noncharacter U+FFFF, escaped", "\\uffff", false),
        ("noncharacter U+FFFF, raw", "\u{ffff}", false),
        ("noncharacter U+FFFE, raw", "\u{fffe}", false),
        ("noncharacter U+FDD0, escaped", "\\ufdd0", false),
        ("noncharacter U+FDEF, raw", "\u{fdef}", false),
        (
            "noncharacter U+1FFFE, as an escaped surrogate pair",
            "\\ud83f\\udffe",
            false,
        ),
        ("noncharacter U+10FFFF, raw", "\u{10ffff}", false),
        (
            "U+FDCF, U+FDF0, U+FFFD, U+10FFFD (not noncharacters)",
            "\u{fdcf}\u{fdf0}\u{fffd}\u{10fffd}",
            true,
        ),
        ("raw U+0001", "\u{1}", false),
        ("raw tab", "\t", false),
        ("raw line feed", "\n", false),
        ("raw U+007F (not a control in JSON)", "\u{7f}", true),
    ] {
        case(
            &format!("string: {name}"),
            format!("{{\"a\":\"{content}\"}}"),
            valid,
        );
    }
    case(
        "names: noncharacter U+FFFE in a member name",
        "{\"\u{fffe}\":1}".into(),
        false,
    );

    // Member names.
    for (name, text, valid) in [
        ("duplicate member names", "{\"a\":1,\"a\":2}", false),
        (
            "duplicate member names after unescaping",
            "{\"a\":1,\"\\u0061\":2}",
            false,
        ),
        (
            "duplicate member names in a nested object",
            "{\"p\":{\"a\":1,\"a\":1}}",
            false,
        ),
        (
            "one name in two objects",
            "{\"p\":{\"a\":1},\"q\":{\"a\":1}}",
            true,
        ),
        (
            "U+00E9 and e + U+0301 are different names (no normalization)",
            "{\"\u{e9}\":1,\"e\u{301}\":2}",
            true,
        ),
        (
            "empty name and U+0000 are different names",
            "{\"\":1,\"\\u0000\":2}",
            true,
        ),
    ] {
        case(&format!("names: {name}"), text.into(), valid);
    }
    out
}

/// Schema texts that are not UTF-8: the manifest's text string does not decode (M1).
const NOT_UTF8: &[(&str, &[u8])] = &[
    ("not UTF-8: byte ff", b"\xff"),
    ("not UTF-8: overlong '/' (c0 af)", b"\xc0\xaf"),
    (
        "not UTF-8: raw surrogate U+D800 (ed a0 80)",
        b"\xed\xa0\x80",
    ),
    (
        "not UTF-8: above U+10FFFF (f4 90 80 80)",
        b"\xf4\x90\x80\x80",
    ),
    ("not UTF-8: truncated sequence (e2 82)", b"\xe2\x82"),
];

/// Every vector of `manifest-json.json`.
pub(super) fn vectors() -> Vec<JsonVector> {
    let provider = provider_key();
    let mut out: Vec<JsonVector> = text_cases()
        .into_iter()
        .map(|(name, text, valid)| {
            let mut m = manifest_body(&provider);
            m.input_schema = text.clone();
            JsonVector {
                name,
                text_hex: hx(text.as_bytes()),
                text: Some(text),
                valid,
                rule: (!valid).then_some("M2"),
                manifest: hx(&Signed::sign(m, &provider).to_bytes()),
            }
        })
        .collect();
    for (name, bad) in NOT_UTF8 {
        // A placeholder of the same length in the string, replaced in the encoded body.
        let placeholder = "~".repeat(bad.len());
        let mut m = manifest_body(&provider);
        m.input_schema = format!("{{\"a\":\"{placeholder}\"}}");
        let mut body = encoding::encode(&m);
        let mut text = b"{\"a\":\"".to_vec();
        text.extend_from_slice(bad);
        text.extend_from_slice(b"\"}");
        let at = body
            .windows(m.input_schema.len())
            .position(|w| w == m.input_schema.as_bytes())
            .unwrap_or_else(|| panic!("{name}: placeholder not found"));
        body[at..at + text.len()].copy_from_slice(&text);
        out.push(JsonVector {
            name: (*name).into(),
            text: None,
            text_hex: hx(&text),
            valid: false,
            rule: Some("M1"),
            manifest: hx(&raw_envelope(Domain::Manifest, &body, &provider)),
        });
    }
    out
}
