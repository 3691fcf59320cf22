//! The receive path: preface, frame splitting and one handler per frame type.
//! Frame-local checks are in `crate::h2::frame`; the checks here need the
//! connection or stream state, each beside its RFC 9113 sentence.

use bytes::Bytes;

use super::{
    Block, Connection, Event, Phase, Report, Target, KEEPALIVE_PING, OUTPUT_HARD_LIMIT, PREFACE,
    SHUTDOWN_PING,
};
use crate::h2::error::{Error, ErrorCode};
use crate::h2::frame::{
    kind, settings::ACK, Data, Frame, GoAway, Head, Headers, Ping, RstStream, Settings,
    WindowUpdate, HEAD_LEN,
};
use crate::h2::hpack::DecodeError;
use crate::h2::request::{BlockKind, RequestBuilder};
use crate::h2::stream::{State, Stream};

impl Connection {
    /// Feeds bytes read from the socket. Complete frames are parsed straight
    /// from `bytes`; only a partial trailing frame is copied.
    pub fn handle_input(&mut self, bytes: &[u8], now: super::Timestamp) {
        let mut input = bytes;
        while !input.is_empty() {
            let n = self.handle_input_until_event(input, now);
            input = input.get(n..).unwrap_or_default();
            if n == 0 {
                break;
            }
        }
    }

    /// Like [`Connection::handle_input`], but stops after the first frame
    /// that produced an event and returns how many bytes of `bytes` it used
    /// (all of them if no event came). An application that takes the events
    /// before feeding the rest acts on every frame at the same point of the
    /// input, so the connection answers the same whatever the read
    /// boundaries were.
    pub fn handle_input_until_event(&mut self, bytes: &[u8], now: super::Timestamp) -> usize {
        self.now = now;
        if self.phase == Phase::Closed || self.read_closed {
            return bytes.len();
        }
        if !bytes.is_empty() {
            // Any input shows the peer is alive: restart the keepalive timer.
            self.last_input = now;
            self.ping_deadline = None;
        }
        let events = self.events.len();
        let mut input = bytes;
        let used = |input: &[u8]| bytes.len() - input.len();
        if let Phase::Preface(matched) = self.phase {
            let want = PREFACE.get(matched..).unwrap_or(&[]);
            let n = want.len().min(input.len());
            // §3.4: "Clients and servers MUST treat an invalid connection preface as a
            // connection error of type PROTOCOL_ERROR."
            if input.get(..n) != want.get(..n) {
                self.close_with(ErrorCode::ProtocolError, "invalid connection preface");
                return bytes.len();
            }
            input = input.get(n..).unwrap_or(&[]);
            self.phase = if matched + n == PREFACE.len() {
                Phase::AwaitSettings
            } else {
                Phase::Preface(matched + n)
            };
            if let Phase::Preface(_) = self.phase {
                return bytes.len();
            }
        }
        // Finish a frame carried over from the last call.
        if !self.inbuf.is_empty() {
            input = self.fill_partial(input);
            if self.phase == Phase::Closed {
                return bytes.len();
            }
            if !self.inbuf.is_empty() {
                return bytes.len(); // still partial; everything was buffered
            }
            if self.events.len() > events {
                return used(input);
            }
        }
        // Parse whole frames directly from the input.
        while self.phase != Phase::Closed {
            let Some(head) = Head::parse(input) else {
                break;
            };
            if let Err(e) = self.check_length(&head) {
                self.on_error(e);
                return bytes.len();
            }
            let end = HEAD_LEN + head.length as usize;
            let Some(payload) = input.get(HEAD_LEN..end) else {
                break;
            };
            self.frame(&head, payload);
            input = input.get(end..).unwrap_or(&[]);
            if self.events.len() > events {
                return used(input);
            }
        }
        if self.phase != Phase::Closed && !input.is_empty() {
            // Keep the partial frame; at most one frame header + our MAX_FRAME_SIZE.
            self.inbuf.extend_from_slice(input);
            if let Some(head) = Head::parse(&self.inbuf) {
                if let Err(e) = self.check_length(&head) {
                    self.on_error(e);
                }
            }
        }
        bytes.len()
    }

    /// Completes the buffered partial frame from `input`; returns the rest of `input`.
    fn fill_partial<'a>(&mut self, mut input: &'a [u8]) -> &'a [u8] {
        let take = |need: usize, buf: &mut Vec<u8>, input: &mut &'a [u8]| {
            let n = need.saturating_sub(buf.len()).min(input.len());
            buf.extend_from_slice(input.get(..n).unwrap_or(&[]));
            *input = input.get(n..).unwrap_or(&[]);
        };
        take(HEAD_LEN, &mut self.inbuf, &mut input);
        let Some(head) = Head::parse(&self.inbuf) else {
            return input;
        };
        if let Err(e) = self.check_length(&head) {
            self.on_error(e);
            return &[];
        }
        let total = HEAD_LEN + head.length as usize;
        self.inbuf
            .reserve_exact(total.saturating_sub(self.inbuf.len()));
        take(total, &mut self.inbuf, &mut input);
        if self.inbuf.len() < total {
            return input;
        }
        let buf = std::mem::take(&mut self.inbuf);
        self.frame(&head, buf.get(HEAD_LEN..).unwrap_or(&[]));
        // Lazily allocated, freed again: an idle connection holds no input buffer.
        input
    }

    /// §4.2: "An endpoint MUST send an error code of FRAME_SIZE_ERROR if a frame
    /// exceeds the size defined in SETTINGS_MAX_FRAME_SIZE". We treat it as a
    /// connection error for every type (allowed: any frame may alter state).
    fn check_length(&self, head: &Head) -> Result<(), Error> {
        if head.length > self.limits.max_frame_size {
            return Err(Error::conn(
                ErrorCode::FrameSizeError,
                "frame larger than MAX_FRAME_SIZE",
            ));
        }
        Ok(())
    }

    /// Handles one complete frame.
    fn frame(&mut self, head: &Head, payload: &[u8]) {
        if self.out.len() > OUTPUT_HARD_LIMIT {
            // The driver keeps feeding input without writing our output.
            return self.close_with(ErrorCode::EnhanceYourCalm, "output not drained");
        }
        if let Err(e) = self.recv_frame(head, payload) {
            self.on_error(e);
        }
    }

    fn recv_frame(&mut self, head: &Head, payload: &[u8]) -> Result<(), Error> {
        if let Some(block) = &self.block {
            // §6.10: "A receiver MUST treat the receipt of any other type of frame or a
            // frame on a different stream as a connection error of type PROTOCOL_ERROR"
            // (while a header block is open, only its CONTINUATION frames may follow).
            if head.kind != kind::CONTINUATION || head.stream_id != block.id {
                return Err(Error::conn(
                    ErrorCode::ProtocolError,
                    "frame interleaved in a header block",
                ));
            }
        } else if head.kind == kind::CONTINUATION {
            // §6.10: a CONTINUATION not preceded by HEADERS/CONTINUATION without
            // END_HEADERS "MUST" be a connection error of type PROTOCOL_ERROR.
            return Err(Error::conn(
                ErrorCode::ProtocolError,
                "CONTINUATION without HEADERS",
            ));
        }
        if self.phase == Phase::AwaitSettings && (head.kind != kind::SETTINGS || head.has(ACK)) {
            // §3.4: the client preface "MUST be followed by a SETTINGS frame"; anything
            // else is an invalid preface: connection error PROTOCOL_ERROR.
            return Err(Error::conn(
                ErrorCode::ProtocolError,
                "first frame is not SETTINGS",
            ));
        }
        match Frame::parse(head, payload)? {
            Frame::Data(d) => self.recv_data(d),
            Frame::Headers(h) => self.recv_headers(h),
            Frame::Continuation(c) => self.recv_continuation(c.fragment, c.end_headers),
            Frame::Priority(_) => Ok(()), // deprecated (RFC 9113 §5.3.2): checked, ignored
            Frame::RstStream(r) => self.recv_rst_stream(r),
            Frame::Settings(s) => self.recv_settings(s),
            Frame::Ping(p) => {
                if p.ack {
                    if p.payload == KEEPALIVE_PING {
                        self.ping_deadline = None;
                    } else if p.payload == SHUTDOWN_PING {
                        self.finish_draining();
                    }
                } else {
                    // §6.7: "Receivers of a PING frame that does not include an ACK flag
                    // MUST send a PING frame with the ACK flag set in response, with an
                    // identical frame payload." (ACKs are never answered.)
                    Ping::encode(p.payload, true, &mut self.out);
                }
                Ok(())
            }
            Frame::GoAway(g) => {
                self.recv_goaway(g);
                Ok(())
            }
            Frame::WindowUpdate(w) => self.recv_window_update(w),
            Frame::Unknown { .. } => Ok(()),
        }
    }

    /// Whether `id` names a stream the client has not opened yet.
    fn is_idle(&self, id: u32) -> bool {
        id > self.max_seen_id
    }

    fn closed_entry(&self, id: u32) -> Option<super::Closed> {
        self.closed.iter().find(|c| c.id == id).copied()
    }

    fn recv_data(&mut self, d: Data<'_>) -> Result<(), Error> {
        let id = d.stream_id;
        // §6.9.1: DATA on any stream counts against the connection window; "A receiver
        // MAY respond with a ... connection error of type FLOW_CONTROL_ERROR" when the
        // sender overran it.
        if self.recv_window.receive(d.flow_len).is_err() {
            return Err(Error::conn(
                ErrorCode::FlowControlError,
                "connection window exceeded",
            ));
        }
        let padding = d.flow_len.saturating_sub(d.data.len() as u32);
        let Some(s) = self.streams.get_mut(id) else {
            // Not delivered to anyone: return the connection credit at once.
            self.release_credit(0, d.flow_len);
            if self.is_idle(id) {
                // §5.1 idle: "Receiving any frame other than HEADERS or PRIORITY on a
                // stream in this state MUST be treated as a connection error of type
                // PROTOCOL_ERROR."
                return Err(Error::conn(
                    ErrorCode::ProtocolError,
                    "DATA on an idle stream",
                ));
            }
            return match self.closed_entry(id) {
                // §5.1 closed: "An endpoint MUST ignore frames that it receives on closed
                // streams after it has sent a RST_STREAM frame."
                Some(c) if c.reset_by_us => Ok(()),
                // §5.1 closed: "an endpoint that receives any frames after receiving a frame
                // with the END_STREAM flag set MUST treat that as a connection error of type
                // STREAM_CLOSED".
                Some(_) => Err(Error::conn(
                    ErrorCode::StreamClosed,
                    "DATA on a closed stream",
                )),
                // Closed long ago (forgotten): a stream error is enough.
                None => Err(Error::stream(
                    id,
                    ErrorCode::StreamClosed,
                    "DATA on a closed stream",
                )),
            };
        };
        if s.state.is_recv_closed() {
            self.release_credit(0, d.flow_len);
            // §5.1 half-closed (remote): "If an endpoint receives additional frames, other
            // than WINDOW_UPDATE, PRIORITY, or RST_STREAM, for a stream that is in this
            // state, it MUST respond with a stream error of type STREAM_CLOSED."
            return Err(Error::stream(
                id,
                ErrorCode::StreamClosed,
                "DATA after END_STREAM",
            ));
        }
        if s.recv_window.receive(d.flow_len).is_err() {
            self.release_credit(0, d.flow_len);
            // §6.9.1: a sender "MUST NOT send a flow-controlled frame with a length that
            // exceeds the space available"; we answer a stream overrun with a stream
            // error of type FLOW_CONTROL_ERROR.
            return Err(Error::stream(
                id,
                ErrorCode::FlowControlError,
                "stream window exceeded",
            ));
        }
        s.received += d.data.len() as u64;
        if let Some(cl) = s.content_length {
            // §8.1.1: "A request or response is also malformed if the value of a
            // content-length header field does not equal the sum of the DATA frame
            // payload lengths that form the content"; malformed → stream PROTOCOL_ERROR.
            if s.received > cl || (d.end_stream && s.received != cl) {
                self.release_credit(id, d.flow_len);
                return Err(Error::stream(
                    id,
                    ErrorCode::ProtocolError,
                    "content-length mismatch",
                ));
            }
        }
        if d.end_stream {
            // Cannot fail: the receive side was checked open above.
            let _ = s.state.recv_end();
        }
        let finished = s.state == State::Closed;
        if padding > 0 {
            self.release_credit(id, padding);
        }
        if !d.data.is_empty() || d.end_stream {
            let data = Bytes::copy_from_slice(d.data);
            self.events.push_back(Event::Data {
                id,
                data,
                end_stream: d.end_stream,
            });
        }
        if finished {
            self.finish_stream(id);
        }
        Ok(())
    }

    fn recv_headers(&mut self, h: Headers<'_>) -> Result<(), Error> {
        let id = h.stream_id;
        let mut target = self.classify_headers(id)?;
        if h.self_dependent && target != Target::Ignore {
            // §5.3.1: "A stream cannot depend on itself. An endpoint MUST treat this as a
            // stream error of type PROTOCOL_ERROR."
            target = Target::Reset {
                code: ErrorCode::ProtocolError,
                counted: true,
            };
        }
        if h.end_headers {
            return self.finish_block(id, target, h.end_stream, h.fragment);
        }
        let mut block = Box::new(Block {
            id,
            end_stream: h.end_stream,
            target,
            buf: Vec::new(),
        });
        self.append_fragment(&mut block, h.fragment)?;
        self.block = Some(block);
        Ok(())
    }

    /// Bound on a raw header block. An HPACK block is (for any sane encoder) no
    /// larger than the header list it decodes to; twice the limit leaves room.
    fn block_bound(&self) -> usize {
        (self.limits.max_header_list_size as usize)
            .saturating_mul(2)
            .max(4096)
    }

    fn append_fragment(&self, block: &mut Block, fragment: &[u8]) -> Result<(), Error> {
        if block.buf.len() + fragment.len() > self.block_bound() {
            // A CONTINUATION flood: we would have to buffer it all to keep HPACK in sync.
            // §10.5.1 allows closing the connection instead of processing the block.
            return Err(Error::conn(
                ErrorCode::EnhanceYourCalm,
                "header block too large",
            ));
        }
        block.buf.extend_from_slice(fragment);
        Ok(())
    }

    fn recv_continuation(&mut self, fragment: &[u8], end_headers: bool) -> Result<(), Error> {
        let Some(mut block) = self.block.take() else {
            return Err(Error::conn(
                ErrorCode::ProtocolError,
                "CONTINUATION without HEADERS",
            ));
        };
        self.append_fragment(&mut block, fragment)?;
        if !end_headers {
            self.block = Some(block);
            return Ok(());
        }
        let Block {
            id,
            end_stream,
            target,
            buf,
        } = *block;
        self.finish_block(id, target, end_stream, &buf)
    }

    /// Decides what the header block starting on stream `id` is.
    fn classify_headers(&mut self, id: u32) -> Result<Target, Error> {
        if let Some(s) = self.streams.get(id) {
            if s.state.is_recv_closed() {
                // §5.1 half-closed (remote): frames other than WINDOW_UPDATE, PRIORITY or
                // RST_STREAM "MUST" get a stream error of type STREAM_CLOSED.
                return Ok(Target::Reset {
                    code: ErrorCode::StreamClosed,
                    counted: true,
                });
            }
            return Ok(Target::Trailers);
        }
        // §5.1.1: "Streams initiated by a client MUST use odd-numbered stream identifiers";
        // "An endpoint that receives an unexpected stream identifier MUST respond with a
        // connection error of type PROTOCOL_ERROR."
        if id.is_multiple_of(2) {
            return Err(Error::conn(
                ErrorCode::ProtocolError,
                "even stream id from the client",
            ));
        }
        if !self.is_idle(id) {
            return match self.closed_entry(id) {
                // §5.1 closed: frames after our RST_STREAM are ignored (still decoded).
                Some(c) if c.reset_by_us => Ok(Target::Ignore),
                // §5.1 closed: frames after END_STREAM: connection error STREAM_CLOSED.
                Some(_) => Err(Error::conn(
                    ErrorCode::StreamClosed,
                    "HEADERS on a closed stream",
                )),
                // §5.1.1: "The identifier of a newly established stream MUST be
                // numerically greater than all streams that the initiating endpoint has
                // opened or reserved" → connection error PROTOCOL_ERROR.
                None => Err(Error::conn(
                    ErrorCode::ProtocolError,
                    "stream id not increasing",
                )),
            };
        }
        self.max_seen_id = id;
        if self.goaway_sent || self.close_when_idle {
            // §6.8: after GOAWAY new streams are not processed; REFUSED_STREAM tells the
            // client it may retry elsewhere (§8.7).
            return Ok(Target::Reset {
                code: ErrorCode::RefusedStream,
                counted: false,
            });
        }
        if self.streams.len() >= self.limits.max_concurrent_streams as usize {
            // §5.1.2: "An endpoint that receives a HEADERS frame that causes its
            // advertised concurrent stream limit to be exceeded MUST treat this as a stream
            // error of type PROTOCOL_ERROR or REFUSED_STREAM." REFUSED_STREAM: the
            // client may retry (§8.7), so it counts as an error only past a generous rate.
            return Ok(Target::Reset {
                code: ErrorCode::RefusedStream,
                counted: self.refusals.record(self.now),
            });
        }
        Ok(Target::NewStream)
    }

    /// Decodes a complete header block and acts on it.
    fn finish_block(
        &mut self,
        id: u32,
        target: Target,
        end_stream: bool,
        block: &[u8],
    ) -> Result<(), Error> {
        let kind = if target == Target::Trailers {
            BlockKind::Trailers
        } else {
            BlockKind::Request
        };
        let mut builder = RequestBuilder::new(kind);
        let mut too_large = false;
        // The whole block is always decoded, whatever becomes of it: the HPACK
        // dynamic table must stay in sync with the client's (§4.3).
        match self.decoder.decode(block, &mut |n, v| builder.field(n, v)) {
            Ok(()) => {}
            Err(DecodeError::HeaderListTooLarge) => too_large = true,
            // §4.3: "A decoding error in a field block MUST be treated as a connection
            // error of type COMPRESSION_ERROR."
            Err(_) => {
                return Err(Error::conn(
                    ErrorCode::CompressionError,
                    "HPACK decoding failed",
                ))
            }
        }
        match target {
            Target::Ignore => Ok(()),
            Target::Reset { code, counted } => {
                self.reset_stream(id, code, counted);
                Ok(())
            }
            Target::NewStream => {
                if too_large {
                    self.reject_too_large(id, end_stream);
                    return Ok(());
                }
                // §8.1.1: "Malformed requests or responses that are detected MUST be
                // treated as a stream error of type PROTOCOL_ERROR."
                let (head, content_length) = builder
                    .finish()
                    .map_err(|why| Error::stream(id, ErrorCode::ProtocolError, why))?;
                if end_stream && content_length.is_some_and(|n| n != 0) {
                    return Err(Error::stream(
                        id,
                        ErrorCode::ProtocolError,
                        "content-length mismatch",
                    ));
                }
                let mut s = Stream::new(
                    end_stream,
                    self.peer.initial_window_size,
                    self.limits.initial_window_size,
                );
                s.content_length = content_length;
                self.streams.insert(id, s);
                self.last_processed_id = id;
                self.idle_since = None;
                self.events.push_back(Event::Headers {
                    id,
                    head,
                    end_stream,
                });
                Ok(())
            }
            Target::Trailers => {
                if too_large {
                    return Err(Error::stream(
                        id,
                        ErrorCode::ProtocolError,
                        "trailers too large",
                    ));
                }
                // §8.1: "An endpoint that receives a HEADERS frame without the END_STREAM
                // flag set after receiving the HEADERS frame that opens a request ... MUST
                // treat the corresponding request or response as malformed."
                if !end_stream {
                    return Err(Error::stream(
                        id,
                        ErrorCode::ProtocolError,
                        "trailers without END_STREAM",
                    ));
                }
                builder
                    .finish()
                    .map_err(|why| Error::stream(id, ErrorCode::ProtocolError, why))?;
                let Some(s) = self.streams.get_mut(id) else {
                    return Ok(());
                };
                if s.content_length.is_some_and(|n| n != s.received) {
                    return Err(Error::stream(
                        id,
                        ErrorCode::ProtocolError,
                        "content-length mismatch",
                    ));
                }
                // Trailers go only to streams whose receive side is open
                // (`classify_headers`), so this cannot fail.
                let _ = s.state.recv_end();
                let finished = s.state == State::Closed;
                self.events.push_back(Event::Trailers { id });
                if finished {
                    self.finish_stream(id);
                }
                Ok(())
            }
        }
    }

    /// The request's header list is larger than we advertised: answer 431
    /// (RFC 9113 §10.5.1, RFC 6585) and end the stream; counted as a local reset.
    fn reject_too_large(&mut self, id: u32, end_stream: bool) {
        let mut block = Vec::new();
        self.encoder
            .encode([(&b":status"[..], &b"431"[..])], &mut block);
        crate::h2::frame::Headers::encode(
            id,
            &block,
            true,
            self.peer.max_frame_size as usize,
            &mut self.out,
        );
        if end_stream {
            self.remember_closed(id, true);
            self.count_local_reset();
        } else {
            // The response is complete; ask the client to stop sending (§8.1).
            self.reset_stream(id, ErrorCode::NoError, true);
        }
    }

    fn recv_rst_stream(&mut self, r: RstStream) -> Result<(), Error> {
        let id = r.stream_id;
        // §6.4: "If a RST_STREAM frame identifying an idle stream is received, the
        // recipient MUST treat this as a connection error of type PROTOCOL_ERROR."
        if self.is_idle(id) {
            return Err(Error::conn(
                ErrorCode::ProtocolError,
                "RST_STREAM on an idle stream",
            ));
        }
        if !self.streams.contains(id) {
            return Ok(()); // already closed: nothing to do
        }
        // Rapid reset (CVE-2023-44487): bound the rate of peer resets.
        let too_many = self.peer_resets.record(self.now);
        self.drop_stream(id, r.code, false);
        if too_many {
            return Err(Error::conn(
                ErrorCode::EnhanceYourCalm,
                "too many stream resets",
            ));
        }
        Ok(())
    }

    fn recv_settings(&mut self, s: Settings<'_>) -> Result<(), Error> {
        if s.ack {
            // §6.5.3: the peer applied our SETTINGS: the SETTINGS_TIMEOUT timer stops.
            self.settings_acked = true;
            if self.phase == Phase::Open {
                self.handshake_deadline = None;
            }
            return Ok(());
        }
        let changes = self.peer.apply(&s);
        if let Some(size) = changes.header_table_size {
            self.encoder.set_max_table_size(size as usize);
        }
        if changes.window_delta != 0 {
            for s in self.streams.values_mut() {
                // §6.9.2: "When the value of SETTINGS_INITIAL_WINDOW_SIZE changes, a
                // receiver MUST adjust the size of all stream flow-control windows that it
                // maintains by the difference"; "An endpoint MUST treat a change to
                // SETTINGS_INITIAL_WINDOW_SIZE that causes any flow-control window to
                // exceed the maximum size as a connection error of type FLOW_CONTROL_ERROR."
                if s.send_window.adjust(changes.window_delta).is_err() {
                    return Err(Error::conn(
                        ErrorCode::FlowControlError,
                        "INITIAL_WINDOW_SIZE overflows a window",
                    ));
                }
            }
        }
        // §6.5.3: "Upon receiving and applying [SETTINGS], the recipient MUST immediately
        // emit a SETTINGS frame with the ACK flag set."
        Settings::encode_ack(&mut self.out);
        if self.phase == Phase::AwaitSettings {
            self.phase = Phase::Open;
            if self.settings_acked {
                self.handshake_deadline = None;
            }
            self.idle_since = Some(self.now);
        }
        Ok(())
    }

    fn recv_goaway(&mut self, g: GoAway) {
        self.report(Report::PeerGoAway {
            code: g.code,
            last_stream_id: g.last_stream_id,
        });
        // §6.8: the peer will open no new streams; finish the ones we have, then close.
        self.close_when_idle = true;
        self.maybe_finish();
    }

    fn recv_window_update(&mut self, w: WindowUpdate) -> Result<(), Error> {
        let inc = i64::from(w.increment);
        if w.stream_id == 0 {
            // §6.9.1: a WINDOW_UPDATE that makes the window exceed 2^31-1 on the
            // connection: "the sender MUST ... send a GOAWAY frame with an error code of
            // FLOW_CONTROL_ERROR".
            return self.send_window.adjust(inc).map_err(|_| {
                Error::conn(ErrorCode::FlowControlError, "connection window overflow")
            });
        }
        if self.is_idle(w.stream_id) {
            // §5.1 idle: only HEADERS or PRIORITY may be received; anything else is a
            // connection error of type PROTOCOL_ERROR.
            return Err(Error::conn(
                ErrorCode::ProtocolError,
                "WINDOW_UPDATE on an idle stream",
            ));
        }
        if let Some(s) = self.streams.get_mut(w.stream_id) {
            // §6.9.1: on a stream, "the sender MUST ... send a RST_STREAM with an error
            // code of FLOW_CONTROL_ERROR".
            s.send_window.adjust(inc).map_err(|_| {
                Error::stream(
                    w.stream_id,
                    ErrorCode::FlowControlError,
                    "stream window overflow",
                )
            })?;
        }
        // §5.1 closed / half-closed (local): WINDOW_UPDATE may arrive late; ignore it.
        Ok(())
    }
}
