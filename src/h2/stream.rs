//! One stream's state (RFC 9113 §5.1) and its queued response.
//!
//! A server stream starts when the client's HEADERS arrive (idle → open, or
//! straight to half-closed (remote) with END_STREAM). The receive half closes
//! on the client's END_STREAM; the send half closes once our END_STREAM has
//! been written. With both halves closed the stream is closed and forgotten.
//! [`State`] holds both halves and changes only through its transitions
//! (`recv_end`, `send_headers`, `send_body`, `sent_end`), which refuse what
//! §5.1 and the order of a response do not allow; `conn/recv.rs` and
//! `conn/send.rs` call them instead of setting flags.

use std::collections::VecDeque;

use bytes::Bytes;

use super::flow::{RecvWindow, SendWindow};

/// The §5.1 state of a live server stream. Idle and reserved states never
/// have a `Stream` (server streams start at the client's HEADERS), and a
/// closed stream is forgotten as soon as it gets there. The connection
/// changes it only through the transitions below, each of which refuses a
/// move §5.1 does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Both sides may send; `local` is where our response is.
    Open {
        /// Our side.
        local: Local,
    },
    /// The client ended its side (END_STREAM received); we may still send.
    HalfClosedRemote {
        /// Our side.
        local: Local,
    },
    /// Our END_STREAM was written; the client may still send.
    HalfClosedLocal,
    /// Both sides ended.
    Closed,
}

/// Where our response is while our side of the stream is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Local {
    /// No response HEADERS yet.
    Idle,
    /// Response HEADERS queued; DATA or trailers may follow.
    Streaming,
    /// END_STREAM is queued (with the last DATA or the trailers), not yet written.
    Ending,
}

/// A transition §5.1 (or the order of a response) does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidTransition;

impl State {
    /// The state after the client's HEADERS (with END_STREAM or not).
    pub fn opened(end_stream: bool) -> State {
        let local = Local::Idle;
        if end_stream {
            State::HalfClosedRemote { local }
        } else {
            State::Open { local }
        }
    }

    /// Our side, while it is open.
    pub fn local(self) -> Option<Local> {
        match self {
            State::Open { local } | State::HalfClosedRemote { local } => Some(local),
            State::HalfClosedLocal | State::Closed => None,
        }
    }

    /// Whether the client has ended its side.
    pub fn is_recv_closed(self) -> bool {
        matches!(self, State::HalfClosedRemote { .. } | State::Closed)
    }

    /// Whether our END_STREAM is queued but not written.
    pub fn is_ending(self) -> bool {
        self.local() == Some(Local::Ending)
    }

    /// Sets our side (which must be open).
    fn set_local(&mut self, to: Local) {
        if let State::Open { local } | State::HalfClosedRemote { local } = self {
            *local = to;
        }
    }

    /// The client's END_STREAM arrived (DATA or trailers).
    pub fn recv_end(&mut self) -> Result<(), InvalidTransition> {
        *self = match *self {
            State::Open { local } => State::HalfClosedRemote { local },
            State::HalfClosedLocal => State::Closed,
            State::HalfClosedRemote { .. } | State::Closed => return Err(InvalidTransition),
        };
        Ok(())
    }

    /// Our response HEADERS are queued; `end_stream`: they are the whole
    /// response (written at once, so our side closes).
    pub fn send_headers(&mut self, end_stream: bool) -> Result<(), InvalidTransition> {
        if self.local() != Some(Local::Idle) {
            return Err(InvalidTransition);
        }
        if end_stream {
            self.sent_end();
        } else {
            self.set_local(Local::Streaming);
        }
        Ok(())
    }

    /// Response DATA (`end_stream`: the last) or trailers are queued.
    pub fn send_body(&mut self, end_stream: bool) -> Result<(), InvalidTransition> {
        if self.local() != Some(Local::Streaming) {
            return Err(InvalidTransition);
        }
        if end_stream {
            self.set_local(Local::Ending);
        }
        Ok(())
    }

    /// Our END_STREAM was written: our side closes.
    pub fn sent_end(&mut self) {
        *self = match *self {
            State::Open { .. } => State::HalfClosedLocal,
            State::HalfClosedRemote { .. } | State::Closed => State::Closed,
            State::HalfClosedLocal => State::HalfClosedLocal,
        };
    }
}

/// A live stream.
#[derive(Debug)]
pub struct Stream {
    /// Where both sides are (§5.1).
    pub state: State,
    /// content-length of the request, checked against the DATA received (§8.1.1).
    pub content_length: Option<u64>,
    /// DATA payload bytes received so far.
    pub received: u64,
    /// Credit for our DATA on this stream.
    pub send_window: SendWindow,
    /// Credit the client has for DATA on this stream.
    pub recv_window: RecvWindow,
    /// Response DATA waiting to be written, in order.
    pub queue: VecDeque<Bytes>,
    /// Total bytes in `queue`.
    pub queued: usize,
    /// Trailers to write once `queue` is empty (encoded only then, so HPACK
    /// blocks reach the wire in the order they were encoded).
    pub trailers: Option<PackedFields>,
}

impl Stream {
    /// A stream just opened by the client's HEADERS.
    pub fn new(end_stream: bool, send_window: u32, recv_window: u32) -> Stream {
        Stream {
            state: State::opened(end_stream),
            content_length: None,
            received: 0,
            send_window: SendWindow::new(send_window),
            recv_window: RecvWindow::new(recv_window, recv_window),
            queue: VecDeque::new(),
            queued: 0,
            trailers: None,
        }
    }

    /// Queued response DATA that flow control lets us write now (the
    /// connection window aside).
    pub fn sendable(&self) -> usize {
        self.queued.min(self.send_window.available())
    }

    /// Whether DATA (or trailers) are waiting to be written.
    pub fn has_pending_output(&self) -> bool {
        !self.queue.is_empty() || self.trailers.is_some() || self.state.is_ending()
    }
}

/// Header fields kept for later in one allocation: per field, the name and
/// value lengths (native-endian `usize`), then the name and the value.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PackedFields(Vec<u8>);

impl PackedFields {
    /// Copies `fields` into one buffer.
    pub fn new(fields: &[(&[u8], &[u8])]) -> PackedFields {
        const LEN: usize = std::mem::size_of::<usize>();
        let size = fields
            .iter()
            .map(|(n, v)| 2 * LEN + n.len() + v.len())
            .sum();
        let mut packed = PackedFields(Vec::with_capacity(size));
        for (name, value) in fields {
            packed.push(name, value);
        }
        packed
    }

    /// Appends one field.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        self.0.extend_from_slice(&name.len().to_ne_bytes());
        self.0.extend_from_slice(&value.len().to_ne_bytes());
        self.0.extend_from_slice(name);
        self.0.extend_from_slice(value);
    }

    /// Whether no field is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        const LEN: usize = std::mem::size_of::<usize>();
        let mut rest = self.0.as_slice();
        std::iter::from_fn(move || {
            let (lens, tail) = rest.split_first_chunk::<{ 2 * LEN }>()?;
            let (n, v) = lens.split_at(LEN);
            let n = usize::from_ne_bytes(n.try_into().ok()?);
            let v = usize::from_ne_bytes(v.try_into().ok()?);
            let (name, tail) = tail.split_at_checked(n)?;
            let (value, tail) = tail.split_at_checked(v)?;
            rest = tail;
            Some((name, value))
        })
    }
}

/// The live streams of a connection, ordered by id.
///
/// A sorted `Vec` rather than a map: there are at most
/// `max_concurrent_streams` of them, new ids only grow (§5.1.1) so opening a
/// stream is a push, lookups are a binary search, and it keeps the binary
/// small (a `BTreeMap` instance costs ~4 KB of code).
#[derive(Debug, Default)]
pub struct StreamMap {
    /// (id, stream), ascending by id.
    entries: Vec<(u32, Stream)>,
}

impl StreamMap {
    /// Number of live streams.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no stream is live.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn find(&self, id: u32) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&id, |(k, _)| *k)
    }

    /// The stream `id`, if live.
    pub fn get(&self, id: u32) -> Option<&Stream> {
        let i = self.find(id).ok()?;
        self.entries.get(i).map(|(_, s)| s)
    }

    /// The stream `id`, if live, for changing.
    pub fn get_mut(&mut self, id: u32) -> Option<&mut Stream> {
        let i = self.find(id).ok()?;
        self.entries.get_mut(i).map(|(_, s)| s)
    }

    /// Whether stream `id` is live.
    pub fn contains(&self, id: u32) -> bool {
        self.find(id).is_ok()
    }

    /// Adds (or replaces) stream `id`.
    pub fn insert(&mut self, id: u32, stream: Stream) {
        match self.find(id) {
            Ok(i) => {
                if let Some(entry) = self.entries.get_mut(i) {
                    entry.1 = stream;
                }
            }
            Err(i) => self.entries.insert(i, (id, stream)),
        }
    }

    /// Removes stream `id`, returning it if it was live.
    pub fn remove(&mut self, id: u32) -> Option<Stream> {
        let i = self.find(id).ok()?;
        let (_, s) = self.entries.remove(i);
        if self.entries.is_empty() && self.entries.capacity() > 16 {
            // A burst is over: an idle connection keeps no stream table.
            self.entries = Vec::new();
        }
        Some(s)
    }

    /// Every live stream, ascending by id.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &Stream)> {
        self.entries.iter().map(|(id, s)| (*id, s))
    }

    /// Every live stream, for changing.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Stream> {
        self.entries.iter_mut().map(|(_, s)| s)
    }

    /// Removes and returns every stream, ascending by id.
    pub fn drain(&mut self) -> impl Iterator<Item = (u32, Stream)> {
        std::mem::take(&mut self.entries).into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_fields_round_trip() {
        let fields: [(&[u8], &[u8]); 3] = [(b"grpc-status", b"0"), (b"", b""), (b"x", &[0, 255])];
        let packed = PackedFields::new(&fields);
        assert_eq!(packed.iter().collect::<Vec<_>>(), fields);
        assert_eq!(PackedFields::new(&[]).iter().count(), 0);
    }

    #[test]
    fn stream_map_keeps_ids_sorted() {
        let mut m = StreamMap::default();
        for id in [5, 1, 9, 3] {
            m.insert(id, Stream::new(false, 1, 1));
        }
        assert_eq!(m.iter().map(|(id, _)| id).collect::<Vec<_>>(), [1, 3, 5, 9]);
        assert!(m.contains(9) && !m.contains(7));
        m.get_mut(3).unwrap().received = 42;
        assert_eq!(m.get(3).map(|s| s.received), Some(42));
        assert!(m.remove(5).is_some());
        assert!(m.remove(5).is_none());
        assert!(m.get(5).is_none());
        assert_eq!(m.len(), 3);
        assert_eq!(m.drain().map(|(id, _)| id).collect::<Vec<_>>(), [1, 3, 9]);
        assert!(m.is_empty());
    }

    #[test]
    fn states() {
        let mut s = Stream::new(false, 10, 10);
        assert_eq!(s.state, State::Open { local: Local::Idle });
        assert_eq!(
            s.state.send_body(false),
            Err(InvalidTransition),
            "DATA before HEADERS"
        );
        s.state.send_headers(false).unwrap();
        assert_eq!(
            s.state.send_headers(false),
            Err(InvalidTransition),
            "HEADERS twice"
        );
        s.state.recv_end().unwrap();
        assert_eq!(
            s.state,
            State::HalfClosedRemote {
                local: Local::Streaming
            }
        );
        assert_eq!(
            s.state.recv_end(),
            Err(InvalidTransition),
            "END_STREAM twice"
        );
        assert!(!s.has_pending_output());
        s.state.send_body(true).unwrap();
        assert!(s.has_pending_output());
        assert_eq!(
            s.state.send_body(false),
            Err(InvalidTransition),
            "after the end"
        );
        s.state.sent_end();
        assert_eq!(s.state, State::Closed);
        // A Trailers-Only answer before the request ended: half-closed (local).
        let mut s = Stream::new(false, 10, 10);
        s.state.send_headers(true).unwrap();
        assert_eq!(s.state, State::HalfClosedLocal);
        assert!(!s.state.is_recv_closed());
        s.state.recv_end().unwrap();
        assert_eq!(s.state, State::Closed);
        assert!(State::opened(true).is_recv_closed());
    }
}
