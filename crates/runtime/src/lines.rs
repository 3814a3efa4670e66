//! Bounded line reading: a line longer than the limit is rejected as soon as the limit is
//! passed, without buffering the rest of it; stderr lines are cut and capped instead.

use std::collections::VecDeque;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Why [`LineReader::next_line`] stopped.
#[derive(Debug)]
pub(crate) enum LineError {
    /// The line exceeded the limit (the reader is then unusable; the run ends).
    TooLong,
    /// Reading the pipe failed.
    Io(std::io::Error),
}

/// Reads `\n`-terminated lines of at most `max` bytes (terminator excluded).
///
/// `next_line` is cancel safe: a partial line survives in `buf` when its future is dropped
/// (the only await point is `fill_buf`, and bytes are moved out of the `BufReader`
/// synchronously after it returns).
pub(crate) struct LineReader<R> {
    inner: BufReader<R>,
    buf: Vec<u8>,
    max: usize,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner: BufReader::with_capacity(64 * 1024, inner),
            buf: Vec::new(),
            max,
        }
    }

    /// The next line without its `\n`; `None` at end of stream. A last line without `\n`
    /// is returned as a line.
    pub(crate) async fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineError> {
        loop {
            let chunk = self.inner.fill_buf().await.map_err(LineError::Io)?;
            if chunk.is_empty() {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
            match chunk.iter().position(|&b| b == b'\n') {
                Some(pos) => {
                    if self.buf.len() + pos > self.max {
                        self.buf = Vec::new();
                        return Err(LineError::TooLong);
                    }
                    self.buf.extend_from_slice(&chunk[..pos]);
                    self.inner.consume(pos + 1);
                    return Ok(Some(std::mem::take(&mut self.buf)));
                }
                None => {
                    let n = chunk.len();
                    if self.buf.len() + n > self.max {
                        self.buf = Vec::new();
                        return Err(LineError::TooLong);
                    }
                    self.buf.extend_from_slice(chunk);
                    self.inner.consume(n);
                }
            }
        }
    }

    /// Reads and drops whatever is available (a partial line included): `None` at end of
    /// stream, else whether any of it was not whitespace. For draining a stream nobody reads
    /// any more; lines are neither split nor limited.
    pub(crate) async fn discard(&mut self) -> std::io::Result<Option<bool>> {
        let partial = std::mem::take(&mut self.buf);
        let chunk = self.inner.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(if partial.is_empty() {
                None
            } else {
                Some(!partial.iter().all(u8::is_ascii_whitespace))
            });
        }
        let nonblank = !chunk
            .iter()
            .chain(partial.iter())
            .all(u8::is_ascii_whitespace);
        let n = chunk.len();
        self.inner.consume(n);
        Ok(Some(nonblank))
    }
}

/// Longest stderr line forwarded to the log (longer lines are cut, marked with `…`).
pub const STDERR_LINE_BYTES: usize = 4 * 1024;
/// Most stderr bytes forwarded to the log per run; the rest is read and dropped.
pub const STDERR_TOTAL_BYTES: usize = 256 * 1024;

/// Lines of stderr kept for [`AgentProcess::stderr_tail`](crate::AgentProcess::stderr_tail).
pub const STDERR_TAIL_LINES: usize = 10;
/// Longest line kept in the tail (longer ones are cut, marked with `…`).
pub const STDERR_TAIL_LINE_BYTES: usize = 300;

/// Reads the agent's stderr to the end, forwarding lines to `tracing` at debug level (target
/// `souk_runtime::agent`), each cut to [`STDERR_LINE_BYTES`], at most [`STDERR_TOTAL_BYTES`]
/// in all. Keeps draining after the cap so the agent never blocks on a full pipe. Returns the
/// last [`STDERR_TAIL_LINES`] lines (each cut to [`STDERR_TAIL_LINE_BYTES`]), for the node to
/// show when the agent fails.
pub(crate) async fn forward_stderr<R: AsyncRead + Unpin>(
    stderr: R,
    hire_id: String,
) -> VecDeque<String> {
    let mut inner = BufReader::with_capacity(16 * 1024, stderr);
    let mut line: Vec<u8> = Vec::new();
    let mut cut = false;
    let mut forwarded = 0usize;
    let mut capped = false;
    let mut tail = VecDeque::with_capacity(STDERR_TAIL_LINES);
    loop {
        let chunk = match inner.fill_buf().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(target: "souk_runtime::agent", hire = %hire_id, "reading stderr: {e}");
                return tail;
            }
        };
        let eof = chunk.is_empty();
        let (take, complete) = match chunk.iter().position(|&b| b == b'\n') {
            Some(pos) => (pos, true),
            None => (chunk.len(), eof),
        };
        let room = STDERR_LINE_BYTES.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..take.min(room)]);
        cut |= take > room;
        let consumed = if complete && !eof { take + 1 } else { take };
        inner.consume(consumed);
        if complete && (!line.is_empty() || !eof) {
            if tail.len() == STDERR_TAIL_LINES {
                tail.pop_front();
            }
            tail.push_back(tail_line(&line, cut));
            if forwarded < STDERR_TOTAL_BYTES {
                forwarded += line.len() + 1;
                let text = String::from_utf8_lossy(&line);
                let mark = if cut { "…" } else { "" };
                tracing::debug!(target: "souk_runtime::agent", hire = %hire_id, "stderr: {text}{mark}");
            } else if !capped {
                capped = true;
                tracing::debug!(
                    target: "souk_runtime::agent",
                    hire = %hire_id,
                    "stderr: more than {STDERR_TOTAL_BYTES} bytes; the rest is dropped"
                );
            }
            line.clear();
            cut = false;
        }
        if eof {
            return tail;
        }
    }
}

/// `line` as kept in the tail: lossy UTF-8, cut at a character boundary to
/// [`STDERR_TAIL_LINE_BYTES`], control characters (terminal escapes) replaced.
fn tail_line(line: &[u8], cut: bool) -> String {
    let text = String::from_utf8_lossy(line);
    let mut out = String::with_capacity(text.len().min(STDERR_TAIL_LINE_BYTES + 3));
    let mut more = cut;
    for c in text.chars() {
        if out.len() + c.len_utf8() > STDERR_TAIL_LINE_BYTES {
            more = true;
            break;
        }
        out.push(if c.is_control() && c != '\t' {
            '\u{fffd}'
        } else {
            c
        });
    }
    if more {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"))
            .block_on(f)
    }

    #[test]
    fn lines_and_limits() {
        block_on(async {
            let data: &[u8] = b"one\n\ntwo\nlast";
            let mut r = LineReader::new(data, 4);
            let mut got = Vec::new();
            while let Some(l) = r.next_line().await.unwrap_or_else(|e| panic!("{e:?}")) {
                got.push(String::from_utf8_lossy(&l).into_owned());
            }
            assert_eq!(got, ["one", "", "two", "last"]);

            let data: &[u8] = b"12345\n";
            let mut r = LineReader::new(data, 4);
            assert!(matches!(r.next_line().await, Err(LineError::TooLong)));

            let data: &[u8] = b"1234\n";
            let mut r = LineReader::new(data, 4);
            assert_eq!(
                r.next_line().await.unwrap_or_else(|e| panic!("{e:?}")),
                Some(b"1234".to_vec())
            );
        });
    }

    #[test]
    fn discard_drains_to_the_end() {
        block_on(async {
            // A partial line taken by next_line, then the rest: all of it is dropped.
            let data: &[u8] = b"  \n\t\n";
            let mut r = LineReader::new(data, 1024);
            let mut nonblank = false;
            while let Some(n) = r.discard().await.unwrap_or_else(|e| panic!("{e}")) {
                nonblank |= n;
            }
            assert!(!nonblank, "only whitespace was written");

            let data: &[u8] = b"\n{\"type\":\"note\"}\nmore";
            let mut r = LineReader::new(data, 4);
            let mut nonblank = false;
            while let Some(n) = r.discard().await.unwrap_or_else(|e| panic!("{e}")) {
                nonblank |= n;
            }
            assert!(nonblank);
            // Lines longer than the limit are no error when discarded; the end stays the end.
            assert!(matches!(r.discard().await, Ok(None)));
        });
    }

    #[test]
    fn long_line_without_newline_is_rejected_early() {
        block_on(async {
            // 10 MB without a newline and a 1 KiB limit: rejected without reading it all.
            let data = vec![b'x'; 10 * 1024 * 1024];
            let mut r = LineReader::new(&data[..], 1024);
            assert!(matches!(r.next_line().await, Err(LineError::TooLong)));
            // Only about one buffer's worth was read from the source.
            assert!(r.inner.get_ref().len() > 9 * 1024 * 1024);
        });
    }

    #[test]
    fn stderr_forwarding_terminates() {
        block_on(async {
            let mut data = vec![b'e'; 3 * STDERR_LINE_BYTES];
            data.extend_from_slice(b"\nshort\n");
            data.extend(std::iter::repeat_n(b'x', STDERR_TOTAL_BYTES * 2));
            let tail = forward_stderr(&data[..], "h".into()).await;
            // The last line has no newline: it still counts; long lines are cut and marked.
            assert_eq!(tail.len(), 3, "{tail:?}");
            assert!(tail[0].starts_with("eee") && tail[0].ends_with('…'));
            assert!(tail[0].len() <= STDERR_TAIL_LINE_BYTES + '…'.len_utf8());
            assert_eq!(tail[1], "short");
            assert!(tail[2].starts_with("xxx") && tail[2].ends_with('…'));
        });
    }

    #[test]
    fn the_tail_keeps_the_last_lines_readable() {
        block_on(async {
            let mut data = String::new();
            for i in 0..25 {
                data.push_str(&format!("line {i}\n"));
            }
            data.push_str("Traceback: \x1b[31mboom\x1b[0m é\n");
            let tail = forward_stderr(data.as_bytes(), "h".into()).await;
            assert_eq!(tail.len(), STDERR_TAIL_LINES);
            assert_eq!(tail[0], "line 16");
            assert_eq!(tail[8], "line 24");
            // Terminal escapes cannot reach the provider's terminal through its log.
            assert_eq!(tail[9], "Traceback: \u{fffd}[31mboom\u{fffd}[0m é");
        });
    }
}
