//! The testnet's connection gate: link faults a local testnet imposes on real nodes, where
//! the kernel offers no `tc netem` (or the testnet runs without root). Present only when
//! the node is started with `souk node run --testnet-gate` (hidden; `souk-testnet run` does
//! it for scenarios with partitions or latency); a node started any other way has no gate
//! and its transport is plain TCP.
//!
//! - **Partitions** block peer ids with libp2p's block list (the swarm side, see
//!   `service::gate`): connections close at once and new ones are refused.
//! - **Latency** is applied by the dialing side of each connection, in both directions:
//!   every outbound TCP connection runs through a pump that holds each chunk for the delay
//!   configured for the remote's listen port (plus jitter, order kept; `loss` is modelled as
//!   a 200 ms retransmission, since TCP does not lose bytes). Configured symmetrically
//!   between two groups, every connection between them is delayed once in each direction.
//!
//! The rules are read per chunk, so a change applies to open connections too.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use libp2p::core::ConnectedPoint;
use libp2p::multiaddr::Protocol;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// What a link to one remote port suffers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Added one-way delay, ms.
    #[serde(default)]
    pub delay_ms: u64,
    /// Up to this much more, uniformly (order is kept), ms.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Fraction of chunks that take a 200 ms retransmission on top, 0 to 1.
    #[serde(default)]
    pub loss: f64,
}

/// A retransmission's cost, for [`Link::loss`].
const RETRANSMIT: Duration = Duration::from_millis(200);
/// The pump's read size.
const CHUNK: usize = 16 * 1024;

/// The gate's rules; shared by the transport and the node.
#[derive(Debug, Default)]
pub struct Gate {
    links: RwLock<HashMap<u16, Link>>,
    noise: AtomicU64,
}

impl Gate {
    /// Replaces the link rules (remote listen port → link).
    pub fn set_links(&self, links: HashMap<u16, Link>) {
        *self.links.write().unwrap_or_else(PoisonError::into_inner) = links;
    }

    /// The link rules in force.
    pub fn links(&self) -> HashMap<u16, Link> {
        self.links
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn link(&self, port: u16) -> Link {
        self.links
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&port)
            .copied()
            .unwrap_or_default()
    }

    /// A number in `[0, 1)` (SplitMix64 over a counter: jitter and loss draws, not secret).
    fn draw(&self) -> f64 {
        let mut z = self
            .noise
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// How long a chunk sent now on a link to `port` is held.
    fn hold(&self, port: u16) -> Duration {
        let l = self.link(port);
        let mut d = Duration::from_millis(l.delay_ms);
        if l.jitter_ms > 0 {
            d += Duration::from_millis(l.jitter_ms).mul_f64(self.draw());
        }
        if l.loss > 0.0 && self.draw() < l.loss {
            d += RETRANSMIT;
        }
        d
    }
}

/// A gated connection, as the upgrade stack above sees it.
pub type GatedStream = Compat<DuplexStream>;

/// Wraps a new TCP connection: outbound ones are pumped through the link rules of the
/// remote's port; inbound ones (whose dialer applies the rules) pass unchanged through the
/// same pump.
pub fn wrap(
    gate: std::sync::Arc<Gate>,
    stream: libp2p::tcp::tokio::TcpStream,
    endpoint: &ConnectedPoint,
) -> GatedStream {
    let port = match endpoint {
        ConnectedPoint::Dialer { address, .. } => address
            .iter()
            .find_map(|p| match p {
                Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .unwrap_or(0),
        ConnectedPoint::Listener { .. } => 0,
    };
    let (ours, theirs) = tokio::io::duplex(4 * CHUNK);
    let (real_read, real_write) = tokio::io::split(stream.0);
    let (pipe_read, pipe_write) = tokio::io::split(theirs);
    tokio::spawn(carry(pipe_read, real_write, gate.clone(), port));
    tokio::spawn(carry(real_read, pipe_write, gate, port));
    ours.compat()
}

/// Moves bytes from `from` to `to`, each chunk held as the link says, in order; closes `to`
/// when `from` ends.
async fn carry(
    mut from: impl AsyncRead + Unpin + Send + 'static,
    mut to: impl AsyncWrite + Unpin + Send + 'static,
    gate: std::sync::Arc<Gate>,
    port: u16,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(64);
    let reader = async move {
        let mut buf = vec![0u8; CHUNK];
        let mut last = Instant::now();
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let due = (Instant::now() + gate.hold(port)).max(last);
            last = due;
            if tx.send((due, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, bytes)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn holds_follow_the_rules_of_the_port() {
        let g = Gate::default();
        assert_eq!(g.hold(4000), Duration::ZERO);
        g.set_links(HashMap::from([(
            4000,
            Link {
                delay_ms: 50,
                jitter_ms: 10,
                loss: 0.0,
            },
        )]));
        for _ in 0..100 {
            let h = g.hold(4000);
            assert!(
                h >= Duration::from_millis(50) && h <= Duration::from_millis(60),
                "{h:?}"
            );
        }
        assert_eq!(g.hold(4001), Duration::ZERO);
        g.set_links(HashMap::from([(
            4000,
            Link {
                delay_ms: 0,
                jitter_ms: 0,
                loss: 1.0,
            },
        )]));
        assert_eq!(g.hold(4000), RETRANSMIT);
    }

    #[tokio::test]
    async fn a_pump_delays_in_order_and_closes_when_its_source_does() {
        let gate = std::sync::Arc::new(Gate::default());
        gate.set_links(HashMap::from([(
            9,
            Link {
                delay_ms: 30,
                jitter_ms: 0,
                loss: 0.0,
            },
        )]));
        let (mut a, b) = tokio::io::duplex(1024);
        let (c, mut d) = tokio::io::duplex(1024);
        tokio::spawn(carry(b, c, gate, 9));
        let t0 = Instant::now();
        a.write_all(b"one").await.unwrap();
        a.write_all(b"two").await.unwrap();
        drop(a);
        let mut got = Vec::new();
        d.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"onetwo");
        assert!(t0.elapsed() >= Duration::from_millis(30));
    }
}
