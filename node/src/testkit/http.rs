//! Raw HTTP/1.1 on a TCP stream, for tests that must send what a well-behaved client never
//! would (two `Host` headers, a body that never comes) and read exactly one answer back.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Reads one response from `s`: its head and a `Content-Length` body. `None` if the server
/// closed the stream before sending a byte; what arrived if it closed midway. Panics if
/// nothing happens within `wait`.
pub async fn read_response(s: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned());
            }
        }
        let n = tokio::time::timeout(wait, s.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no answer within {wait:?}"))
            .unwrap_or(0);
        if n == 0 {
            return (!buf.is_empty()).then(|| String::from_utf8_lossy(&buf).into_owned());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
