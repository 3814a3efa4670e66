//! The request-response codec for Souk's discovery protocols: one canonical-CBOR message per
//! stream, preceded by its length as a 4-byte big-endian integer (`spec/discovery.md`).
//! Lengths above the protocol's limit are refused before anything is read; a declared length
//! within the limit is not trusted either: the buffer grows with the bytes that actually
//! arrive (a peer cannot make the node allocate 16 MiB with a 4-byte prefix).

use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;
use souk_protocol::encoding::{self, Canonical};

/// A length-prefixed canonical CBOR codec for request type `Req` and response type `Resp`.
#[derive(Debug)]
pub struct CborCodec<Req, Resp> {
    max_request: usize,
    max_response: usize,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> CborCodec<Req, Resp> {
    /// A codec refusing requests above `max_request` and responses above `max_response` bytes.
    pub fn new(max_request: usize, max_response: usize) -> Self {
        Self {
            max_request,
            max_response,
            _types: PhantomData,
        }
    }
}

impl<Req, Resp> Clone for CborCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::new(self.max_request, self.max_response)
    }
}

/// Most bytes reserved up front for a frame; the rest is allocated as it arrives.
const FIRST_CHUNK: usize = 64 * 1024;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes exceeds the limit of {max}"),
        ));
    }
    let mut buf = Vec::with_capacity(len.min(FIRST_CHUNK));
    io.take(len as u64).read_to_end(&mut buf).await?;
    if buf.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("message ended after {} of {len} bytes", buf.len()),
        ));
    }
    Ok(buf)
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    io.write_all(bytes).await?;
    io.close().await
}

fn decode<T: Canonical>(bytes: &[u8], max: usize) -> io::Result<T> {
    encoding::decode(bytes, max).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

impl<Req, Resp> request_response::Codec for CborCodec<Req, Resp>
where
    Req: Canonical + Send + 'static,
    Resp: Canonical + Send + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_frame(io, self.max_request).await?;
        decode(&bytes, self.max_request)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        let bytes = read_frame(io, self.max_response).await?;
        decode(&bytes, self.max_response)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &encoding::encode(&req)).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        resp: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &encoding::encode(&resp)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(declared: u32, body: &[u8]) -> futures::io::Cursor<Vec<u8>> {
        let mut v = declared.to_be_bytes().to_vec();
        v.extend_from_slice(body);
        futures::io::Cursor::new(v)
    }

    #[tokio::test]
    async fn frames_are_read_whole_and_lies_about_length_fail() {
        let ok = read_frame(&mut framed(3, b"abc"), 16).await;
        assert_eq!(ok.ok(), Some(b"abc".to_vec()));
        // Over the limit: refused before reading.
        let err = read_frame(&mut framed(17, b"x"), 16).await.err();
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::InvalidData));
        // A large declared length with a short body: an early end, not a 16 MiB buffer.
        let mut short = framed(16 << 20, &[7; 100]);
        let err = read_frame(&mut short, 16 << 20).await.err();
        assert_eq!(err.map(|e| e.kind()), Some(io::ErrorKind::UnexpectedEof));
    }
}
