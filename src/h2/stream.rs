//! One stream's state (RFC 9113 §5.1) and its queued response.
//!
//! A server stream starts when the client's HEADERS arrive (idle → open, or
//! straight to half-closed (remote) with END_STREAM). The receive half closes
//! on the client's END_STREAM; the send half closes once our END_STREAM has
//! been written. With both halves closed the stream is closed and forgotten.

use std::collections::VecDeque;

use bytes::Bytes;

use super::flow::{RecvWindow, SendWindow};

/// The §5.1 states a live server stream can be in (idle and reserved states
/// never have a `Stream`; closed streams are removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Both sides may send.
    Open,
    /// The client ended its side (END_STREAM received); we may still send.
    HalfClosedRemote,
    /// We ended our side; the client may still send.
    HalfClosedLocal,
    /// Both sides ended.
    Closed,
}

/// Where our response is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendState {
    /// No response HEADERS yet.
    Idle,
    /// Response HEADERS written; DATA or trailers may follow.
    Headers,
    /// END_STREAM has been queued (with the last DATA or the trailers).
    Ending,
    /// END_STREAM has been written.
    Done,
}

/// A live stream.
#[derive(Debug)]
pub struct Stream {
    /// Whether the client ended its side.
    pub recv_closed: bool,
    /// Whether the request HEADERS were seen (a second HEADERS block is trailers).
    pub got_trailers: bool,
    /// Whether the application was told about this stream (so a reset must be reported).
    pub announced: bool,
    /// content-length of the request, checked against the DATA received (§8.1.1).
    pub content_length: Option<u64>,
    /// DATA payload bytes received so far.
    pub received: u64,
    /// Our response progress.
    pub send: SendState,
    /// Credit for our DATA on this stream.
    pub send_window: SendWindow,
    /// Credit the client has for DATA on this stream.
    pub recv_window: RecvWindow,
    /// Response DATA waiting for flow-control credit, in order.
    pub queue: VecDeque<Bytes>,
    /// Trailers to write once `queue` is empty (encoded only then, so HPACK
    /// blocks reach the wire in the order they were encoded).
    pub trailers: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl Stream {
    /// A stream just opened by the client's HEADERS.
    pub fn new(send_window: u32, recv_window: u32) -> Stream {
        Stream {
            recv_closed: false,
            got_trailers: false,
            announced: false,
            content_length: None,
            received: 0,
            send: SendState::Idle,
            send_window: SendWindow::new(send_window),
            recv_window: RecvWindow::new(recv_window, recv_window),
            queue: VecDeque::new(),
            trailers: None,
        }
    }

    /// The §5.1 state.
    pub fn state(&self) -> State {
        match (self.recv_closed, self.send == SendState::Done) {
            (false, false) => State::Open,
            (true, false) => State::HalfClosedRemote,
            (false, true) => State::HalfClosedLocal,
            (true, true) => State::Closed,
        }
    }

    /// Whether DATA (or trailers) are waiting to be written.
    pub fn has_pending_output(&self) -> bool {
        !self.queue.is_empty() || self.trailers.is_some() || self.send == SendState::Ending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        let mut s = Stream::new(10, 10);
        assert_eq!(s.state(), State::Open);
        s.recv_closed = true;
        assert_eq!(s.state(), State::HalfClosedRemote);
        s.send = SendState::Done;
        assert_eq!(s.state(), State::Closed);
        s.recv_closed = false;
        assert_eq!(s.state(), State::HalfClosedLocal);
        assert!(!s.has_pending_output());
        s.send = SendState::Ending;
        assert!(s.has_pending_output());
    }
}
