//! gRPC message framing: `Length-Prefixed-Message → Compressed-Flag
//! Message-Length Message` (1 + 4 bytes big-endian, then the message).
//!
//! [`Decoder`] is fed the DATA payloads of one request stream as they arrive
//! ([`Decoder::push`]) and hands out complete messages ([`Decoder::next_message`]):
//! a message may span many DATA frames and one frame may hold many messages.
//! The length in the prefix is checked against the size bound *before* any
//! of the body is buffered, so a client cannot make the server hold more
//! than one bounded message per stream.
//!
//! This server negotiates no compression (it accepts only `identity`), so a
//! set Compressed-Flag is a protocol error.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::status::Status;
use crate::status::Code;

/// Size of the prefix before every message.
pub const PREFIX_LEN: usize = 5;

/// Incremental decoder for the messages of one request stream.
#[derive(Debug)]
pub struct Decoder {
    /// Largest message accepted (the prefix excluded).
    max_message_size: usize,
    /// Input received but not yet looked at.
    pending: Bytes,
    /// The prefix being assembled (it may itself be split across frames).
    prefix: [u8; PREFIX_LEN],
    /// How many bytes of `prefix` are filled.
    prefix_len: usize,
    /// The body being assembled once the prefix is complete: its announced
    /// length and the bytes so far. Grows with what arrives, never beyond
    /// the (already checked) announced length.
    body: Option<(usize, BytesMut)>,
}

impl Decoder {
    /// A decoder accepting messages of at most `max_message_size` bytes.
    pub fn new(max_message_size: usize) -> Decoder {
        Decoder {
            max_message_size,
            pending: Bytes::new(),
            prefix: [0; PREFIX_LEN],
            prefix_len: 0,
            body: None,
        }
    }

    /// Adds the payload of one DATA frame. Call [`Decoder::next_message`] until it
    /// returns `Ok(None)` before pushing more, so input never piles up.
    pub fn push(&mut self, data: Bytes) {
        if self.pending.is_empty() {
            self.pending = data;
        } else {
            let mut joined = BytesMut::with_capacity(self.pending.len() + data.len());
            joined.extend_from_slice(&self.pending);
            joined.extend_from_slice(&data);
            self.pending = joined.freeze();
        }
    }

    /// The next complete message, `Ok(None)` if more input is needed, or the
    /// status the call must fail with.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.body.is_none() {
            let take = (PREFIX_LEN - self.prefix_len).min(self.pending.len());
            if let (Some(dst), Some(src)) = (
                self.prefix.get_mut(self.prefix_len..self.prefix_len + take),
                self.pending.get(..take),
            ) {
                dst.copy_from_slice(src);
            }
            // (`advance`, not `split_to`: splitting a `Bytes` made from a Vec
            // costs an allocation.)
            self.pending.advance(take);
            self.prefix_len += take;
            if self.prefix_len < PREFIX_LEN {
                return Ok(None);
            }
            self.prefix_len = 0;
            let [flag, a, b, c, d] = self.prefix;
            match flag {
                0 => {}
                // Spec (compression.md): a Compressed-Flag without a
                // grpc-encoding other than identity MUST fail with INTERNAL.
                1 => {
                    return Err(Status::new(
                        Code::Internal,
                        "protocol error: received message with compressed-flag but no grpc-encoding was specified",
                    ))
                }
                f => {
                    return Err(Status::new(
                        Code::Internal,
                        format!("protocol error: received message with invalid compression flag: {f} (valid flags are 0 and 1)"),
                    ))
                }
            }
            let len = usize::try_from(u32::from_be_bytes([a, b, c, d])).unwrap_or(usize::MAX);
            if len > self.max_message_size {
                return Err(too_large(len, self.max_message_size));
            }
            // Whole message already here: hand out a slice, no copy (and
            // when it is all there is, the buffer itself).
            if self.pending.len() == len {
                return Ok(Some(std::mem::take(&mut self.pending)));
            }
            if self.pending.len() > len {
                return Ok(Some(self.pending.split_to(len)));
            }
            self.body = Some((len, BytesMut::with_capacity(self.pending.len())));
        }
        let Some((len, buf)) = self.body.as_mut() else {
            return Ok(None);
        };
        let take = (*len - buf.len()).min(self.pending.len());
        buf.extend_from_slice(&self.pending.split_to(take));
        if buf.len() < *len {
            return Ok(None);
        }
        Ok(self.body.take().map(|(_, buf)| buf.freeze()))
    }

    /// Bytes held: a partial prefix, input not yet looked at, the partial body.
    pub fn buffered(&self) -> usize {
        self.prefix_len + self.pending.len() + self.body.as_ref().map_or(0, |(_, b)| b.len())
    }

    /// Bytes still to come before the current message is complete (0 when
    /// no message is started; only the prefix's rest while it is partial).
    pub fn missing(&self) -> usize {
        match &self.body {
            Some((len, buf)) => len.saturating_sub(buf.len() + self.pending.len()),
            None if self.prefix_len > 0 => PREFIX_LEN - self.prefix_len,
            None => 0,
        }
    }

    /// Whether a message is partly received. At the end of the request this
    /// means the stream was cut mid-message.
    pub fn is_partial(&self) -> bool {
        self.prefix_len > 0 || self.body.is_some() || !self.pending.is_empty()
    }
}

/// The status for a message over the bound: code [`crate::service::TOO_LARGE`]
/// and the tokio flavour's wording, so both servers say the same.
fn too_large(len: usize, max: usize) -> Status {
    Status::new(
        crate::service::TOO_LARGE,
        format!("message of {len} bytes is over the limit of {max} bytes"),
    )
}

/// The status for a request that ended in the middle of a message (tonic's
/// wording).
pub fn truncated() -> Status {
    Status::new(Code::Internal, "Unexpected EOF decoding stream.")
}

/// Encodes `message` with its uncompressed 5-byte prefix, ready for a DATA frame.
pub fn encode<M: prost::Message>(message: &M) -> Bytes {
    let len = message.encoded_len();
    let mut buf = BytesMut::with_capacity(PREFIX_LEN + len);
    buf.put_u8(0);
    // Replies are small (bounded by the request bound plus a prefix); a
    // reply over 4 GiB cannot be built from a request of at most 4 GiB - 1.
    buf.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Cannot fail: the buffer has exactly the room `encoded_len` asked for.
    let _ = message.encode(&mut buf);
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::echo::EchoRequest;

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = vec![0];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn drain(d: &mut Decoder) -> Result<Vec<Bytes>, Status> {
        let mut out = Vec::new();
        while let Some(m) = d.next_message()? {
            out.push(m);
        }
        Ok(out)
    }

    #[test]
    fn one_message_in_one_chunk() {
        let mut d = Decoder::new(100);
        d.push(Bytes::from(framed(b"hello")));
        assert_eq!(drain(&mut d).unwrap(), vec![Bytes::from_static(b"hello")]);
        assert!(!d.is_partial());
    }

    #[test]
    fn message_split_byte_by_byte() {
        let input = framed(b"split across many frames");
        let mut d = Decoder::new(100);
        let mut got = Vec::new();
        for b in input {
            d.push(Bytes::from(vec![b]));
            got.extend(drain(&mut d).unwrap());
        }
        assert_eq!(got, vec![Bytes::from_static(b"split across many frames")]);
        assert!(!d.is_partial());
    }

    #[test]
    fn several_messages_in_one_chunk_and_empty_messages() {
        let mut input = framed(b"one");
        input.extend(framed(b""));
        input.extend(framed(b"three"));
        input.extend(&framed(b"four")[..3]);
        let mut d = Decoder::new(100);
        d.push(Bytes::from(input));
        assert_eq!(
            drain(&mut d).unwrap(),
            vec![
                Bytes::from_static(b"one"),
                Bytes::new(),
                Bytes::from_static(b"three")
            ]
        );
        assert!(d.is_partial());
        d.push(Bytes::from(framed(b"four")[3..].to_vec()));
        assert_eq!(drain(&mut d).unwrap(), vec![Bytes::from_static(b"four")]);
    }

    #[test]
    fn oversize_rejected_from_the_prefix_alone() {
        let mut d = Decoder::new(10);
        // Only the prefix announcing 4 GiB - 1 arrives: the error comes at once.
        d.push(Bytes::from_static(&[0, 0xFF, 0xFF, 0xFF, 0xFF]));
        let e = d.next_message().unwrap_err();
        assert_eq!(e.code, crate::service::TOO_LARGE);
        assert_eq!(
            e.message,
            "message of 4294967295 bytes is over the limit of 10 bytes"
        );
        // Exactly the bound is fine.
        let mut d = Decoder::new(3);
        d.push(Bytes::from(framed(b"abc")));
        assert_eq!(drain(&mut d).unwrap().len(), 1);
    }

    #[test]
    fn compressed_flag_without_encoding_is_internal() {
        let mut d = Decoder::new(100);
        d.push(Bytes::from_static(&[1, 0, 0, 0, 1, 7]));
        assert_eq!(d.next_message().unwrap_err().code, Code::Internal);
        let mut d = Decoder::new(100);
        d.push(Bytes::from_static(&[2, 0, 0, 0, 0]));
        assert_eq!(d.next_message().unwrap_err().code, Code::Internal);
    }

    #[test]
    fn encode_round_trips() {
        let req = EchoRequest {
            message: "hi".into(),
        };
        let wire = encode(&req);
        assert_eq!(&wire[..5], &[0, 0, 0, 0, 4]);
        let mut d = Decoder::new(100);
        d.push(wire);
        let body = d.next_message().unwrap().unwrap();
        assert_eq!(<EchoRequest as prost::Message>::decode(body).unwrap(), req);
    }
}
