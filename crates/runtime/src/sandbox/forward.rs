//! The in-sandbox forwarder: accepts TCP connections on `127.0.0.1:<port>` in the sandbox's
//! network namespace and relays each, byte for byte, to the egress proxy's unix socket.
//!
//! One thread, one `poll` loop, bounded buffers and a bounded number of connections, so an
//! agent opening connections in a loop costs neither threads (which would count against its
//! process limit) nor unbounded memory. Never interprets the bytes it relays.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use rustix::event::{PollFd, PollFlags, poll};

/// Connections relayed at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 128;
/// Buffer per direction per connection.
const BUF_BYTES: usize = 16 * 1024;

struct Buf {
    data: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Buf {
    fn new() -> Buf {
        Buf {
            data: vec![0; BUF_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn has_space(&self) -> bool {
        self.end < self.data.len()
    }

    /// Reads what is available; `Ok(true)` at end of stream.
    fn fill(&mut self, r: &mut impl Read) -> io::Result<bool> {
        if !self.has_space() {
            return Ok(false);
        }
        match r.read(&mut self.data[self.end..]) {
            Ok(0) => Ok(true),
            Ok(n) => {
                self.end += n;
                Ok(false)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes what the peer takes; an emptied buffer starts over at its beginning.
    fn drain(&mut self, w: &mut impl Write) -> io::Result<()> {
        while !self.is_empty() {
            match w.write(&self.data[self.start..self.end]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.start += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.start = 0;
        self.end = 0;
        Ok(())
    }
}

/// One direction of a connection.
struct Half {
    buf: Buf,
    /// The source reached end of stream.
    eof: bool,
    /// The destination's write side was shut down.
    shut: bool,
}

impl Half {
    fn new() -> Half {
        Half {
            buf: Buf::new(),
            eof: false,
            shut: false,
        }
    }

    fn wants_read(&self) -> bool {
        !self.eof && self.buf.has_space()
    }
}

struct Conn {
    tcp: TcpStream,
    unix: UnixStream,
    /// Agent to proxy.
    up: Half,
    /// Proxy to agent.
    down: Half,
}

impl Conn {
    /// Moves bytes both ways; `Ok(true)` once both directions are finished.
    fn step(&mut self, tcp_ready: bool, unix_ready: bool) -> io::Result<bool> {
        if tcp_ready && self.up.wants_read() {
            self.up.eof = self.up.buf.fill(&mut self.tcp)?;
        }
        if unix_ready && self.down.wants_read() {
            self.down.eof = self.down.buf.fill(&mut self.unix)?;
        }
        self.up.buf.drain(&mut self.unix)?;
        self.down.buf.drain(&mut self.tcp)?;
        if self.up.eof && self.up.buf.is_empty() && !self.up.shut {
            let _ = self.unix.shutdown(Shutdown::Write);
            self.up.shut = true;
        }
        if self.down.eof && self.down.buf.is_empty() && !self.down.shut {
            let _ = self.tcp.shutdown(Shutdown::Write);
            self.down.shut = true;
        }
        Ok(self.up.shut && self.down.shut)
    }
}

/// Relays connections accepted on `listener` to the unix socket at `socket`, forever.
pub(crate) fn run(listener: TcpListener, socket: PathBuf) {
    if let Err(e) = listener.set_nonblocking(true) {
        eprintln!("souk-sandbox: forwarder: {e}");
        return;
    }
    let mut conns: Vec<Conn> = Vec::new();
    let mut warned = false;
    loop {
        let mut fds = Vec::with_capacity(1 + 2 * conns.len());
        let accept = if conns.len() < MAX_CONNECTIONS {
            PollFlags::IN
        } else {
            PollFlags::empty()
        };
        fds.push(PollFd::new(&listener, accept));
        for c in &conns {
            let mut t = PollFlags::empty();
            let mut u = PollFlags::empty();
            if c.up.wants_read() {
                t |= PollFlags::IN;
            }
            if !c.down.buf.is_empty() {
                t |= PollFlags::OUT;
            }
            if c.down.wants_read() {
                u |= PollFlags::IN;
            }
            if !c.up.buf.is_empty() {
                u |= PollFlags::OUT;
            }
            fds.push(PollFd::new(&c.tcp, t));
            fds.push(PollFd::new(&c.unix, u));
        }
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => {
                eprintln!("souk-sandbox: forwarder: poll: {e}");
                return;
            }
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        // Each connection's two fds follow the listener's.
        let mut i = 0;
        conns.retain_mut(|c| {
            let (t, u) = (ready[1 + 2 * i], ready[2 + 2 * i]);
            i += 1;
            if !t && !u {
                return true;
            }
            matches!(c.step(t, u), Ok(false))
        });
        if ready[0] {
            while conns.len() < MAX_CONNECTIONS {
                let tcp = match listener.accept() {
                    Ok((tcp, _)) => tcp,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // EMFILE and the like: stop accepting until a connection closes.
                    Err(_) => break,
                };
                let unix = match UnixStream::connect(&socket) {
                    Ok(u) => u,
                    Err(e) => {
                        if !warned {
                            eprintln!("souk-sandbox: the egress proxy is unreachable: {e}");
                            warned = true;
                        }
                        continue; // dropping `tcp` closes the agent's connection
                    }
                };
                if tcp.set_nonblocking(true).is_err() || unix.set_nonblocking(true).is_err() {
                    continue;
                }
                let _ = tcp.set_nodelay(true);
                conns.push(Conn {
                    tcp,
                    unix,
                    up: Half::new(),
                    down: Half::new(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn relays_both_ways_with_half_close() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let sock = dir.path().join("proxy.sock");
        let upstream = UnixListener::bind(&sock).unwrap_or_else(|e| panic!("{e}"));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        std::thread::spawn(move || run(listener, sock));
        // Upstream: reads everything, then answers with it reversed plus its length.
        let server = std::thread::spawn(move || {
            for _ in 0..3 {
                let (mut s, _) = upstream.accept().unwrap_or_else(|e| panic!("{e}"));
                let mut got = Vec::new();
                s.read_to_end(&mut got).unwrap_or_else(|e| panic!("{e}"));
                got.reverse();
                s.write_all(&got).unwrap_or_else(|e| panic!("{e}"));
            }
        });
        for size in [5usize, 100_000, 1] {
            let mut c = TcpStream::connect(addr).unwrap_or_else(|e| panic!("{e}"));
            let msg: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            c.write_all(&msg).unwrap_or_else(|e| panic!("{e}"));
            c.shutdown(Shutdown::Write)
                .unwrap_or_else(|e| panic!("{e}"));
            let mut back = Vec::new();
            c.read_to_end(&mut back).unwrap_or_else(|e| panic!("{e}"));
            let mut want = msg;
            want.reverse();
            assert_eq!(back, want);
        }
        server.join().unwrap_or_else(|_| panic!("server panicked"));
    }
}
