//! Host keys: the one spelling of `host[:port]` every comparison uses.
//!
//! Owns parsing and normalising a host (lowercase, one trailing dot dropped, IPv6 in
//! brackets, port 443 implied and omitted). Listed hosts, grant hosts, absolute-form URIs and
//! `CONNECT` authorities all go through [`HostKey::parse`], so "listed" always means "equal
//! keys". It never resolves names.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// The port implied when a host is written without one.
pub(crate) const DEFAULT_PORT: u16 = 443;
const MAX_HOST_LEN: usize = 253;

/// A normalised `host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct HostKey {
    /// Lowercase name or IP literal, without brackets.
    host: String,
    port: u16,
    ip: Option<IpAddr>,
}

impl HostKey {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`.
    pub(crate) fn parse(s: &str) -> Option<HostKey> {
        if let Some(rest) = s.strip_prefix('[') {
            let (v6, after) = rest.split_once(']')?;
            let port = match after {
                "" => DEFAULT_PORT,
                p => parse_port(p.strip_prefix(':')?)?,
            };
            let ip: Ipv6Addr = v6.parse().ok()?;
            return Some(HostKey {
                host: ip.to_string(),
                port,
                ip: Some(IpAddr::V6(ip)),
            });
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, parse_port(p)?),
            None => (s, DEFAULT_PORT),
        };
        HostKey::from_parts(host, port)
    }

    /// A key from a host (name, IPv4, or IPv6 with or without brackets) and a port.
    pub(crate) fn from_parts(host: &str, port: u16) -> Option<HostKey> {
        if port == 0 {
            return None;
        }
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Some(HostKey {
                host: ip.to_string(),
                port,
                ip: Some(ip),
            });
        }
        let name = bare.strip_suffix('.').unwrap_or(bare).to_ascii_lowercase();
        if name.is_empty() || name.len() > MAX_HOST_LEN {
            return None;
        }
        let labels_ok = name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        });
        if !labels_ok {
            return None;
        }
        Some(HostKey {
            host: name,
            port,
            ip: None,
        })
    }

    /// The name or IP literal (no brackets): what is resolved and sent as SNI.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// The port (443 when none was written).
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The IP when the host is an IP literal.
    pub(crate) fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// The `Host` header value: the key as displayed.
    pub(crate) fn authority(&self) -> String {
        self.to_string()
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok().filter(|&n| n != 0)
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v6 = matches!(self.ip, Some(IpAddr::V6(_)));
        match (v6, self.port) {
            (true, DEFAULT_PORT) => write!(f, "[{}]", self.host),
            (true, p) => write!(f, "[{}]:{p}", self.host),
            (false, DEFAULT_PORT) => f.write_str(&self.host),
            (false, p) => write!(f, "{}:{p}", self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        HostKey::parse(s)
            .map(|k| k.to_string())
            .unwrap_or_else(|| "INVALID".into())
    }

    #[test]
    fn normalises() {
        assert_eq!(key("API.Example.com"), "api.example.com");
        assert_eq!(key("api.example.com:443"), "api.example.com");
        assert_eq!(key("api.example.com."), "api.example.com");
        assert_eq!(key("api.example.com:8443"), "api.example.com:8443");
        assert_eq!(key("[::1]"), "[::1]");
        assert_eq!(key("[0:0::1]:443"), "[::1]");
        assert_eq!(key("[::1]:80"), "[::1]:80");
        assert_eq!(key("127.0.0.1:8080"), "127.0.0.1:8080");
        let k = HostKey::parse("Api.Test:8443").unwrap_or_else(|| panic!("parse"));
        assert_eq!((k.host(), k.port()), ("api.test", 8443));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            ":443",
            "a..b",
            "-a.com",
            "a-.com",
            "a b.com",
            "a.com:0",
            "a.com:99999",
            "a.com:+1",
            "user@a.com",
            "[::1",
            "[zz]",
            "a.com:",
            "é.com",
        ] {
            assert_eq!(key(bad), "INVALID", "{bad:?}");
        }
    }
}
