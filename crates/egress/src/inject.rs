//! Injection of a secret where the manifest's [`Injection`] says, and nowhere else.
//!
//! Owns two steps: [`take_site`] finds the injection position in the agent's request and
//! removes the placeholder found there (anything else there is a `header_conflict`), and
//! [`apply`] puts the secret at that position (header with prefix, HTTP Basic, or query
//! parameter), marking header values sensitive. Between the two, the caller checks that the
//! rest of the request carries neither placeholder nor secret. This module never logs and
//! never returns the secret inside an error.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use souk_protocol::manifest::Injection;
use zeroize::Zeroizing;

use crate::secret::Secret;

/// Characters percent-encoded in an injected query value: all but RFC 3986 unreserved.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The agent set the injection header or parameter to something other than the placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Conflict;

/// The secret cannot be written at the injection position (e.g. a control character in a
/// header value, or an invalid header name in the manifest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unplaceable;

/// Where the secret goes: for query injection, the index among the `&`-separated pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Site {
    query_index: Option<usize>,
}

/// The query split on `&` (empty pieces dropped), as the agent wrote it.
pub(crate) fn split_query(query: Option<&str>) -> Vec<String> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Finds the injection position and removes the placeholder from it.
pub(crate) fn take_site(
    injection: &Injection,
    placeholder: &str,
    headers: &mut HeaderMap,
    query: &mut Vec<String>,
) -> Result<Site, Conflict> {
    match injection {
        Injection::Header { name, prefix } => {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Conflict)?;
            let with_prefix = format!("{prefix}{placeholder}");
            take_header(headers, &name, |v| {
                v == with_prefix.as_bytes() || v == placeholder.as_bytes()
            })?;
            Ok(Site { query_index: None })
        }
        Injection::Basic => {
            let encoded = STANDARD.encode(placeholder);
            take_header(headers, &AUTHORIZATION, |v| {
                if v == placeholder.as_bytes() {
                    return true;
                }
                let Some((scheme, rest)) = split_scheme(v) else {
                    return false;
                };
                scheme.eq_ignore_ascii_case(b"basic")
                    && (rest == placeholder.as_bytes() || rest == encoded.as_bytes())
            })?;
            Ok(Site { query_index: None })
        }
        Injection::Query { param } => {
            let mut found = None;
            for (i, pair) in query.iter().enumerate() {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                if decode(k) != *param {
                    continue;
                }
                if found.is_some() || decode(v) != placeholder {
                    return Err(Conflict);
                }
                found = Some(i);
            }
            if let Some(i) = found {
                query.remove(i);
            }
            Ok(Site { query_index: found })
        }
    }
}

fn split_scheme(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let sp = v.iter().position(|&b| b == b' ')?;
    let rest = &v[sp + 1..];
    let start = rest.iter().position(|&b| b != b' ').unwrap_or(rest.len());
    Some((&v[..sp], &rest[start..]))
}

fn take_header(
    headers: &mut HeaderMap,
    name: &HeaderName,
    is_placeholder: impl Fn(&[u8]) -> bool,
) -> Result<(), Conflict> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(()),
        (Some(v), None) if is_placeholder(v.as_bytes()) => {
            headers.remove(name);
            Ok(())
        }
        _ => Err(Conflict),
    }
}

fn decode(s: &str) -> String {
    let plus = s.replace('+', " ");
    percent_decode_str(&plus).decode_utf8_lossy().into_owned()
}

/// Writes the secret at `site`. Returns the new query string for query injection (`None`
/// leaves the query as it is); header values are marked sensitive.
pub(crate) fn apply(
    injection: &Injection,
    site: Site,
    secret: &Secret,
    headers: &mut HeaderMap,
    query: &[String],
) -> Result<Option<Zeroizing<String>>, Unplaceable> {
    match injection {
        Injection::Header { name, prefix } => {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| Unplaceable)?;
            let mut value =
                Zeroizing::new(Vec::with_capacity(prefix.len() + secret.expose().len()));
            value.extend_from_slice(prefix.as_bytes());
            value.extend_from_slice(secret.expose());
            headers.insert(name, sensitive(&value)?);
            Ok(None)
        }
        Injection::Basic => {
            let mut value = Zeroizing::new(String::from("Basic "));
            STANDARD.encode_string(secret.expose(), &mut value);
            headers.insert(AUTHORIZATION, sensitive(value.as_bytes())?);
            Ok(None)
        }
        Injection::Query { param } => {
            let mut out = Zeroizing::new(String::new());
            let at = site.query_index.unwrap_or(query.len()).min(query.len());
            let mut push = |piece: &str| {
                if !out.is_empty() {
                    out.push('&');
                }
                out.push_str(piece);
            };
            for pair in &query[..at] {
                push(pair);
            }
            let mut injected = Zeroizing::new(String::new());
            injected.push_str(&utf8_percent_encode(param, QUERY_VALUE).to_string());
            injected.push('=');
            for piece in percent_encoding::percent_encode(secret.expose(), QUERY_VALUE) {
                injected.push_str(piece);
            }
            push(&injected);
            for pair in &query[at..] {
                push(pair);
            }
            Ok(Some(out))
        }
    }
}

fn sensitive(value: &[u8]) -> Result<HeaderValue, Unplaceable> {
    let mut v = HeaderValue::from_bytes(value).map_err(|_| Unplaceable)?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PH: &str = "souk-credential:crm";

    fn secret() -> Secret {
        Secret::new(Zeroizing::new(b"user:p@ss w/rd".to_vec()))
    }

    fn header(name: &str, prefix: &str) -> Injection {
        Injection::Header {
            name: name.into(),
            prefix: prefix.into(),
        }
    }

    fn map(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                *k,
                HeaderValue::from_str(v).unwrap_or_else(|e| panic!("{e}")),
            );
        }
        h
    }

    #[test]
    fn header_replaces_placeholder_or_adds() {
        let inj = header("authorization", "Bearer ");
        for start in [
            map(&[]),
            map(&[("authorization", "Bearer souk-credential:crm")]),
        ] {
            let mut h = start;
            let site = take_site(&inj, PH, &mut h, &mut vec![]).unwrap_or_else(|_| panic!("site"));
            assert!(h.get("authorization").is_none());
            let q = apply(&inj, site, &secret(), &mut h, &[]).unwrap_or_else(|_| panic!("apply"));
            assert!(q.is_none());
            let v = h
                .get("authorization")
                .unwrap_or_else(|| panic!("no header"));
            assert_eq!(v.as_bytes(), b"Bearer user:p@ss w/rd");
            assert!(v.is_sensitive());
        }
    }

    #[test]
    fn header_conflicts() {
        let inj = header("x-api-key", "");
        for bad in [
            map(&[("x-api-key", "something-else")]),
            map(&[("x-api-key", PH), ("x-api-key", PH)]),
        ] {
            let mut h = bad;
            assert_eq!(take_site(&inj, PH, &mut h, &mut vec![]), Err(Conflict));
        }
    }

    #[test]
    fn basic_forms() {
        let b64 = format!("Basic {}", STANDARD.encode(PH));
        for v in [
            PH.to_owned(),
            format!("Basic {PH}"),
            format!("basic  {PH}"),
            b64,
        ] {
            let mut h = map(&[("authorization", &v)]);
            let site = take_site(&Injection::Basic, PH, &mut h, &mut vec![])
                .unwrap_or_else(|_| panic!("{v}"));
            apply(&Injection::Basic, site, &secret(), &mut h, &[])
                .unwrap_or_else(|_| panic!("apply"));
            let want = format!("Basic {}", STANDARD.encode("user:p@ss w/rd"));
            assert_eq!(
                h.get("authorization").map(|v| v.as_bytes()),
                Some(want.as_bytes())
            );
        }
        let mut h = map(&[("authorization", "Bearer abc")]);
        assert_eq!(
            take_site(&Injection::Basic, PH, &mut h, &mut vec![]),
            Err(Conflict)
        );
    }

    #[test]
    fn query_in_place_or_appended() {
        let inj = Injection::Query {
            param: "key".into(),
        };
        let mut q = split_query(Some("a=1&key=souk-credential%3Acrm&b=2"));
        let mut h = HeaderMap::new();
        let site = take_site(&inj, PH, &mut h, &mut q).unwrap_or_else(|_| panic!("site"));
        assert_eq!(q, ["a=1", "b=2"]);
        let out = apply(&inj, site, &secret(), &mut h, &q).unwrap_or_else(|_| panic!("apply"));
        assert_eq!(
            out.as_deref().map(String::as_str),
            Some("a=1&key=user%3Ap%40ss%20w%2Frd&b=2")
        );

        let mut q = split_query(None);
        let site = take_site(&inj, PH, &mut h, &mut q).unwrap_or_else(|_| panic!("site"));
        let out = apply(&inj, site, &secret(), &mut h, &q).unwrap_or_else(|_| panic!("apply"));
        assert_eq!(
            out.as_deref().map(String::as_str),
            Some("key=user%3Ap%40ss%20w%2Frd")
        );

        let mut q = split_query(Some("key=mine"));
        assert_eq!(take_site(&inj, PH, &mut h, &mut q), Err(Conflict));
        let mut q = split_query(Some("k%65y=mine"));
        assert_eq!(take_site(&inj, PH, &mut h, &mut q), Err(Conflict));
    }

    #[test]
    fn control_characters_cannot_be_placed_in_headers() {
        let s = Secret::new(Zeroizing::new(b"abc\r\nx-evil: 1".to_vec()));
        let mut h = HeaderMap::new();
        let inj = header("x-api-key", "");
        let site = take_site(&inj, PH, &mut h, &mut vec![]).unwrap_or_else(|_| panic!("site"));
        assert_eq!(apply(&inj, site, &s, &mut h, &[]), Err(Unplaceable));
    }
}
