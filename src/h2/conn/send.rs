//! The send path: response HEADERS, DATA and trailers, written under flow
//! control (RFC 9113 §5.2, §6.9) with round-robin between streams.

use bytes::Bytes;

use super::{Connection, Phase, SendError, TRANSMIT_BUDGET};
use crate::h2::error::ErrorCode;
use crate::h2::frame::{Data, Headers, RstStream};
use crate::h2::stream::{PackedFields, State};

impl Connection {
    /// Appends everything there is to write to `out`: queued control frames
    /// and HEADERS, then response DATA as flow control allows (at most about
    /// 64 KiB of DATA per call; call again once `out` is written).
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) {
        self.take_out(out);
        if self.phase != Phase::Open {
            return;
        }
        self.write_data(out);
        if self.read_closed {
            self.drop_stalled_streams();
            self.take_out(out);
        }
    }

    /// Moves the queued frames to `out`.
    fn take_out(&mut self, out: &mut Vec<u8>) {
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
    }

    /// After the peer's EOF no WINDOW_UPDATE can arrive, so a stream whose
    /// next DATA waits for flow-control credit can never finish: reset it
    /// (CANCEL), so the connection closes instead of holding it forever.
    /// Runs after `write_data`, so everything the windows allow went out.
    fn drop_stalled_streams(&mut self) {
        let conn_blocked = self.send_window.available() == 0;
        let stalled: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| s.queued > 0 && (conn_blocked || s.send_window.available() == 0))
            .map(|(id, _)| id)
            .collect();
        for id in stalled {
            self.reset_stream(id, ErrorCode::Cancel, false);
        }
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
        if !(100..=999).contains(&status) {
            return Err(SendError::InvalidState);
        }
        s.state
            .send_headers(end_stream)
            .map_err(|_| SendError::InvalidState)?;
        // Three ASCII digits (checked above), without a formatter.
        let digit = |n: u16| b'0' + (n % 10) as u8;
        let status = [digit(status / 100), digit(status / 10), digit(status)];
        let all = std::iter::once((&b":status"[..], &status[..])).chain(fields.iter().copied());
        let mut block = std::mem::take(&mut self.block_buf);
        block.clear();
        self.encoder.encode(all, &mut block);
        Headers::encode(
            id,
            &block,
            end_stream,
            self.peer.max_frame_size as usize,
            &mut self.out,
        );
        self.keep_block_buf(block);
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
        s.state
            .send_body(end_stream)
            .map_err(|_| SendError::InvalidState)?;
        if !data.is_empty() {
            s.queued += data.len();
            s.queue.push_back(data);
        }
        Ok(())
    }

    /// Ends the response on stream `id` with trailers (written after the queued DATA).
    pub fn send_trailers(&mut self, id: u32, fields: &[(&[u8], &[u8])]) -> Result<(), SendError> {
        self.check_open()?;
        let s = self.streams.get_mut(id).ok_or(SendError::UnknownStream)?;
        s.state
            .send_body(true)
            .map_err(|_| SendError::InvalidState)?;
        s.trailers = Some(PackedFields::new(fields));
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

    /// Puts the header-block scratch buffer back, unless a large block grew it.
    fn keep_block_buf(&mut self, block: Vec<u8>) {
        if block.capacity() <= 1024 {
            self.block_buf = block;
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
        if s.state == State::Closed {
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
        let mut ready = std::mem::take(&mut self.ready_buf);
        ready.clear();
        ready.extend(
            self.streams
                .iter()
                .filter(|(_, s)| s.has_pending_output())
                .map(|(id, _)| id),
        );
        if !ready.is_empty() {
            self.write_ready(&mut ready, out, start_len);
        }
        self.ready_buf = ready;
    }

    /// The round-robin loop of [`Connection::write_data`] over the streams in `ready`.
    fn write_ready(&mut self, ready: &mut [u32], out: &mut Vec<u8>, start_len: usize) {
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
            for &id in ready.iter() {
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
            // The whole buffer when it fits (splitting a `Bytes` made from
            // a Vec costs an allocation).
            let chunk = if n == front.len() {
                s.queue.pop_front().unwrap_or_default()
            } else {
                front.split_to(n)
            };
            let end = s.queue.is_empty() && s.trailers.is_none() && s.state.is_ending();
            s.queued -= n;
            s.send_window.consume(n);
            self.send_window.consume(n);
            Data::encode(id, &chunk, end, out);
            if end {
                s.state.sent_end();
                self.send_finished(id);
            }
            return true;
        }
        if let Some(trailers) = s.trailers.take() {
            s.state.sent_end();
            let mut block = std::mem::take(&mut self.block_buf);
            block.clear();
            self.encoder.encode(trailers.iter(), &mut block);
            Headers::encode(id, &block, true, max_frame, out);
            self.keep_block_buf(block);
            self.send_finished(id);
            return true;
        }
        if s.state.is_ending() {
            // END_STREAM after the data went out without it: an empty DATA frame.
            s.state.sent_end();
            Data::encode(id, &[], true, out);
            self.send_finished(id);
            return true;
        }
        false
    }
}
