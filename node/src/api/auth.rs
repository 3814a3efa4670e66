//! Authentication of local API requests: bearer token (constant-time compare), no `Origin`
//! header, exactly one `Host` header naming a loopback host, an origin-form request target
//! (`/v1/...`, not `http://host/v1/...`). A refused request's body is thrown away (bounded)
//! before the answer, so a client still sending it reads the answer instead of a reset.

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::{ServerState, body, error};

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn host_is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Why a request is refused before its handler, or `None`.
fn refusal(req: &Request, token: &str) -> Option<Response> {
    let headers = req.headers();
    if headers.contains_key(header::ORIGIN) {
        return Some(error(
            StatusCode::FORBIDDEN,
            "cross-origin requests are refused",
        ));
    }
    // `http://host/path` (absolute form) or `host:port` (authority form, CONNECT): the
    // target would name a host besides the `Host` header.
    if req.uri().scheme().is_some() || req.uri().authority().is_some() {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "the request target must be a path (/v1/...), not an absolute URL",
        ));
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Some(error(StatusCode::BAD_REQUEST, "more than one Host header"));
    }
    let host = host.and_then(|h| h.to_str().ok()).unwrap_or("");
    if !host_is_loopback(host) {
        return Some(error(
            StatusCode::FORBIDDEN,
            "the API answers only requests addressed to a loopback host",
        ));
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), token.as_bytes()) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API token (the CLI reads it from api.token in the data directory)",
        ));
    }
    None
}

/// Middleware: refuses unauthenticated, cross-origin, non-loopback-host and absolute-form
/// requests.
pub(crate) async fn require_token(
    State(s): State<ServerState>,
    req: Request,
    next: Next,
) -> Response {
    match refusal(&req, s.api.token.as_str()) {
        None => next.run(req).await,
        Some(resp) => {
            let (parts, b) = req.into_parts();
            body::refuse(&parts.headers, b, &s.limits, resp).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "127.0.0.1:80",
            "localhost:9",
            "[::1]:5",
            "127.3.4.5:1",
            "localhost",
        ] {
            assert!(host_is_loopback(ok), "{ok}");
        }
        for bad in [
            "",
            "example.com:80",
            "10.0.0.1:80",
            "[2001:db8::1]:80",
            "127.0.0.1.evil.com:80",
        ] {
            assert!(!host_is_loopback(bad), "{bad}");
        }
    }

    fn status_of(uri: &str, headers: &[(&str, &str)]) -> Option<u16> {
        let mut b = Request::builder().uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(axum::body::Body::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        refusal(&req, "tok").map(|r| r.status().as_u16())
    }

    #[test]
    fn one_loopback_host_an_origin_form_target_and_the_token() {
        let auth = ("authorization", "Bearer tok");
        let host = ("host", "127.0.0.1:9");
        assert_eq!(status_of("/v1/info", &[host, auth]), None);
        assert_eq!(
            status_of("/v1/info", &[host, ("host", "evil.example"), auth]),
            Some(400),
            "two Host headers"
        );
        assert_eq!(
            status_of("/v1/info", &[host, host, auth]),
            Some(400),
            "two Host headers, even equal"
        );
        assert_eq!(
            status_of("http://evil.example/v1/info", &[host, auth]),
            Some(400),
            "absolute-form target"
        );
        assert_eq!(
            status_of("http://127.0.0.1:9/v1/info", &[host, auth]),
            Some(400),
            "absolute-form target, even to loopback"
        );
        assert_eq!(status_of("/v1/info", &[auth]), Some(403), "no Host");
        assert_eq!(status_of("/v1/info", &[host]), Some(401));
        assert_eq!(
            status_of("/v1/info", &[host, auth, ("origin", "https://x")]),
            Some(403)
        );
    }

    #[test]
    fn token_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
