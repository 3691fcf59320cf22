//! The send path: response HEADERS, DATA and trailers, written under flow
//! control (RFC 9113 §5.2, §6.9) with round-robin between streams.

use bytes::Bytes;

use super::{Connection, Phase, SendError, TRANSMIT_BUDGET};
use crate::h2::error::ErrorCode;
use crate::h2::frame::{Data, Headers, RstStream};
use crate::h2::stream::SendState;

impl Connection {
    /// Appends everything there is to write to `out`: queued control frames
    /// and HEADERS, then response DATA as flow control allows (at most about
    /// 64 KiB of DATA per call; call again once `out` is written).
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        if out.is_empty() && out.capacity() < self.out.len() {
            // Hand our buffer over rather than copy it into one too small anyway.
            std::mem::swap(out, &mut self.out);
        } else {
            out.extend_from_slice(&self.out);
            self.out.clear();
        }
        if self.out.capacity() > 1024 {
            // Output goes out in bursts; an idle connection keeps no buffer.
            self.out = Vec::new();
        }
        if self.phase != Phase::Open {
            return;
        }
        self.write_data(out);
    }

    /// Starts the response on stream `id`: `:status` plus `fields` (lower-case
    /// names). `end_stream` makes it a headers-only response (gRPC Trailers-Only).
    pub fn send_headers(
        &mut self,
        id: u32,
        status: u16,
        fields: &[(&[u8], &[u8])],
        end_stream: bool,
    ) -> Result<(), SendError> {
        self.check_open()?;
        let s = self.streams.get_mut(id).ok_or(SendError::UnknownStream)?;
        if s.send != SendState::Idle || !(100..=999).contains(&status) {
            return Err(SendError::InvalidState);
        }
        s.send = if end_stream {
            SendState::Done
        } else {
            SendState::Headers
        };
        let status = status.to_string();
        let all =
            std::iter::once((&b":status"[..], status.as_bytes())).chain(fields.iter().copied());
        let mut block = Vec::new();
        self.encoder.encode(all, &mut block);
        Headers::encode(
            id,
            &block,
            end_stream,
            self.peer.max_frame_size as usize,
            &mut self.out,
        );
        if end_stream {
            self.send_finished(id);
        }
        Ok(())
    }

    /// Queues response body bytes on stream `id`; they are written as flow
    /// control allows. `end_stream` ends the response.
    pub fn send_data(&mut self, id: u32, data: Bytes, end_stream: bool) -> Result<(), SendError> {
        self.check_open()?;
        let s = self.streams.get_mut(id).ok_or(SendError::UnknownStream)?;
        if s.send != SendState::Headers {
            return Err(SendError::InvalidState);
        }
        if !data.is_empty() {
            s.queued += data.len();
            s.queue.push_back(data);
        }
        if end_stream {
            s.send = SendState::Ending;
        }
        Ok(())
    }

    /// Ends the response on stream `id` with trailers (written after the queued DATA).
    pub fn send_trailers(&mut self, id: u32, fields: &[(&[u8], &[u8])]) -> Result<(), SendError> {
        self.check_open()?;
        let s = self.streams.get_mut(id).ok_or(SendError::UnknownStream)?;
        if s.send != SendState::Headers {
            return Err(SendError::InvalidState);
        }
        s.trailers = Some(
            fields
                .iter()
                .map(|(n, v)| (n.to_vec(), v.to_vec()))
                .collect(),
        );
        s.send = SendState::Ending;
        Ok(())
    }

    /// Resets stream `id` with `code` (for example CANCEL); no event follows.
    pub fn reset(&mut self, id: u32, code: ErrorCode) {
        if self.phase != Phase::Closed && self.streams.remove(id).is_some() {
            RstStream::encode(id, code, &mut self.out);
            self.remember_closed(id, true);
            self.on_stream_gone();
        }
    }

    fn check_open(&self) -> Result<(), SendError> {
        match self.phase {
            Phase::Closed => Err(SendError::ConnectionClosed),
            _ => Ok(()),
        }
    }

    /// Our END_STREAM is written: close the stream, or, if the client is still
    /// sending, ask it to stop with RST_STREAM(NO_ERROR) (§8.1).
    fn send_finished(&mut self, id: u32) {
        let Some(s) = self.streams.get(id) else {
            return;
        };
        if s.recv_closed {
            self.finish_stream(id);
        } else {
            // §8.1: "A server can send a complete response prior to the client sending an
            // entire request ... the server MAY request that the client abort transmission
            // of a request without error by sending a RST_STREAM with an error code of
            // NO_ERROR after sending a complete response".
            self.reset_stream(id, ErrorCode::NoError, false);
        }
    }

    /// Writes DATA (and trailers) for streams with queued output, one frame per
    /// stream per round, within min(connection window, stream window, peer
    /// MAX_FRAME_SIZE) (§6.9.1: "A sender MUST NOT send a flow-controlled frame with
    /// a length that exceeds the space available in either of the flow-control windows").
    fn write_data(&mut self, out: &mut Vec<u8>) {
        let start_len = out.len();
        let mut ready: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| s.has_pending_output())
            .map(|(id, _)| id)
            .collect();
        if ready.is_empty() {
            return;
        }
        // Round-robin: start after the stream served first last time.
        let pos = ready
            .iter()
            .position(|&id| id > self.next_stream)
            .unwrap_or(0);
        ready.rotate_left(pos);
        if let Some(&first) = ready.first() {
            self.next_stream = first;
        }
        let max_frame = self.peer.max_frame_size as usize;
        loop {
            let mut progress = false;
            for &id in &ready {
                if out.len() - start_len >= TRANSMIT_BUDGET {
                    return;
                }
                if self.write_one(id, max_frame, out) {
                    progress = true;
                }
            }
            if !progress {
                return;
            }
        }
    }

    /// Writes at most one frame for stream `id`; true if it wrote something.
    fn write_one(&mut self, id: u32, max_frame: usize, out: &mut Vec<u8>) -> bool {
        let conn_avail = self.send_window.available();
        let Some(s) = self.streams.get_mut(id) else {
            return false;
        };
        if let Some(front) = s.queue.front_mut() {
            let n = front
                .len()
                .min(conn_avail)
                .min(s.send_window.available())
                .min(max_frame);
            if n == 0 {
                return false; // blocked on flow control; a WINDOW_UPDATE will wake it
            }
            let chunk = front.split_to(n);
            if front.is_empty() {
                s.queue.pop_front();
            }
            let end = s.queue.is_empty() && s.trailers.is_none() && s.send == SendState::Ending;
            s.queued -= n;
            s.send_window.consume(n);
            self.send_window.consume(n);
            Data::encode(id, &chunk, end, out);
            if end {
                s.send = SendState::Done;
                self.send_finished(id);
            }
            return true;
        }
        if let Some(trailers) = s.trailers.take() {
            s.send = SendState::Done;
            let mut block = Vec::new();
            self.encoder.encode(
                trailers.iter().map(|(n, v)| (n.as_slice(), v.as_slice())),
                &mut block,
            );
            Headers::encode(id, &block, true, max_frame, out);
            self.send_finished(id);
            return true;
        }
        if s.send == SendState::Ending {
            // END_STREAM after the data went out without it: an empty DATA frame.
            s.send = SendState::Done;
            Data::encode(id, &[], true, out);
            self.send_finished(id);
            return true;
        }
        false
    }
}
