//! Fuzz target: the HTTP/2 frame codec (`lean_grpc::h2::frame`) on arbitrary bytes.
//!
//! The input is split into frames the way the connection does it
//! (`Head::parse`, then `head.length` payload bytes; a short last frame gets
//! what is left, with its length field adjusted so the codec's contract —
//! payload is exactly `head.length` bytes — holds). Every frame goes through
//! `Frame::parse`.
//!
//! Checked: no panic; parsed fields are consistent with the payload (DATA
//! data and HEADERS fragments are slices inside it, flow length = frame
//! length, reserved bits cleared, SETTINGS pairs = length / 6); error codes
//! survive `ErrorCode::from_u32`/`to_u32`; and each parsed frame re-encoded
//! by the frame's own `encode` parses back to the same value (HEADERS via
//! `Headers::encode`'s HEADERS + CONTINUATION split, reassembled).

#![no_main]

use lean_grpc::h2::frame::{
    kind, Continuation, Data, Frame, GoAway, Head, Headers, Ping, RstStream, Settings,
    WindowUpdate, HEAD_LEN,
};
use lean_grpc::h2::{Error, ErrorCode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    while let Some(mut head) = Head::parse(input) {
        assert!(head.stream_id <= 0x7fff_ffff, "reserved bit kept");
        let rest = &input[HEAD_LEN..];
        let n = (head.length as usize).min(rest.len());
        let payload = &rest[..n];
        input = &rest[n..];
        head.length = n as u32;
        check_frame(&head, payload);
    }
});

/// Parses one frame and checks what came out.
fn check_frame(head: &Head, payload: &[u8]) {
    match Frame::parse(head, payload) {
        Ok(frame) => check_parsed(head, payload, frame),
        Err(Error::Conn(_)) => {}
        Err(Error::Stream(e)) => {
            assert_eq!(e.id, head.stream_id, "stream error for another stream");
            assert_ne!(e.id, 0, "stream error on stream 0");
        }
    }
}

/// `inner` is a subslice of `outer`.
fn within(inner: &[u8], outer: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fn reparse(bytes: &[u8]) -> Frame<'_> {
    let head = Head::parse(bytes).expect("encoded frame has a header");
    let payload = &bytes[HEAD_LEN..];
    assert_eq!(head.length as usize, payload.len(), "encoded length field");
    Frame::parse(&head, payload).expect("our own encoding parses")
}

fn code_round_trip(code: ErrorCode) {
    assert_eq!(ErrorCode::from_u32(code.to_u32()), code);
}

fn check_parsed(head: &Head, payload: &[u8], frame: Frame<'_>) {
    let mut out = Vec::new();
    match frame {
        Frame::Data(d) => {
            assert_eq!(head.kind, kind::DATA);
            assert_eq!(d.stream_id, head.stream_id);
            assert_ne!(d.stream_id, 0);
            assert_eq!(d.flow_len as usize, payload.len(), "DATA flow length");
            assert!(within(d.data, payload), "DATA data outside the payload");
            Data::encode(d.stream_id, d.data, d.end_stream, &mut out);
            let Frame::Data(back) = reparse(&out) else {
                panic!("DATA re-encoded as another type")
            };
            assert_eq!(back.data, d.data);
            assert_eq!(back.end_stream, d.end_stream);
            assert_eq!(back.stream_id, d.stream_id);
        }
        Frame::Headers(h) => {
            assert_eq!(head.kind, kind::HEADERS);
            assert_ne!(h.stream_id, 0);
            assert!(
                within(h.fragment, payload),
                "HEADERS fragment outside the payload"
            );
            // Split into small frames to exercise the CONTINUATION path, then join.
            let max_frame = 1 + usize::from(head.flags);
            Headers::encode(h.stream_id, h.fragment, h.end_stream, max_frame, &mut out);
            let (block, end_stream) = reassemble(&out, h.stream_id);
            assert_eq!(block, h.fragment, "HEADERS fragment round trip");
            assert_eq!(end_stream, h.end_stream);
        }
        Frame::Priority(p) => {
            assert_eq!(head.kind, kind::PRIORITY);
            assert_eq!(payload.len(), 5);
            assert_ne!(p.dependency, p.stream_id, "self-dependency accepted");
        }
        Frame::RstStream(r) => {
            assert_eq!(payload.len(), 4);
            assert_ne!(r.stream_id, 0);
            code_round_trip(r.code);
            RstStream::encode(r.stream_id, r.code, &mut out);
            assert_eq!(reparse(&out), Frame::RstStream(r));
            assert_eq!(&out[HEAD_LEN..], payload, "RST_STREAM bytes round trip");
        }
        Frame::Settings(s) => {
            assert_eq!(head.stream_id, 0);
            let params: Vec<(u16, u32)> = s.iter().collect();
            assert_eq!(params.len() * 6, payload.len());
            if s.ack {
                assert!(params.is_empty());
                Settings::encode_ack(&mut out);
            } else {
                Settings::encode(&params, &mut out);
                assert_eq!(&out[HEAD_LEN..], payload, "SETTINGS bytes round trip");
            }
            let Frame::Settings(back) = reparse(&out) else {
                panic!("SETTINGS re-encoded as another type")
            };
            assert_eq!(back.ack, s.ack);
            assert!(back.iter().eq(params.iter().copied()));
        }
        Frame::Ping(p) => {
            assert_eq!(head.stream_id, 0);
            Ping::encode(p.payload, p.ack, &mut out);
            assert_eq!(reparse(&out), Frame::Ping(p));
        }
        Frame::GoAway(g) => {
            assert_eq!(head.stream_id, 0);
            assert!(g.last_stream_id <= 0x7fff_ffff);
            code_round_trip(g.code);
            let debug = &payload[8..];
            GoAway::encode(g.last_stream_id, g.code, debug, &mut out);
            assert_eq!(reparse(&out), Frame::GoAway(g));
        }
        Frame::WindowUpdate(w) => {
            assert!(w.increment > 0 && w.increment <= 0x7fff_ffff);
            assert_eq!(w.stream_id, head.stream_id);
            WindowUpdate::encode(w.stream_id, w.increment, &mut out);
            assert_eq!(reparse(&out), Frame::WindowUpdate(w));
        }
        Frame::Continuation(c) => {
            assert_ne!(c.stream_id, 0);
            assert_eq!(c.fragment, payload);
            assert_eq!(
                c,
                Continuation {
                    stream_id: head.stream_id,
                    fragment: payload,
                    end_headers: c.end_headers
                }
            );
        }
        Frame::Unknown { stream_id } => {
            assert!(
                head.kind > kind::CONTINUATION,
                "known type {} parsed as unknown",
                head.kind
            );
            assert_eq!(stream_id, head.stream_id);
        }
    }
}

/// Joins a HEADERS frame and its CONTINUATIONs written by `Headers::encode`;
/// checks the flags on the way: END_HEADERS on the last frame only.
fn reassemble(mut bytes: &[u8], id: u32) -> (Vec<u8>, bool) {
    let mut block = Vec::new();
    let mut first = true;
    let mut end_stream = false;
    loop {
        let head = Head::parse(bytes).expect("a frame header");
        let len = head.length as usize;
        let payload = &bytes[HEAD_LEN..HEAD_LEN + len];
        bytes = &bytes[HEAD_LEN + len..];
        let (fragment, end_headers) = match Frame::parse(&head, payload) {
            Ok(Frame::Headers(h)) if first => {
                end_stream = h.end_stream;
                (h.fragment, h.end_headers)
            }
            Ok(Frame::Continuation(c)) if !first => (c.fragment, c.end_headers),
            other => panic!("unexpected frame in an encoded header block: {other:?}"),
        };
        assert_eq!(head.stream_id, id);
        block.extend_from_slice(fragment);
        first = false;
        if end_headers {
            assert!(bytes.is_empty(), "bytes after END_HEADERS");
            return (block, end_stream);
        }
        assert!(!bytes.is_empty(), "header block without END_HEADERS");
    }
}
