//! SETTINGS values (RFC 9113 §6.5.2): the ones we advertise, and the peer's
//! as they change over the connection.

use super::frame::settings::{
    Settings, HEADER_TABLE_SIZE, INITIAL_WINDOW_SIZE, MAX_CONCURRENT_STREAMS, MAX_FRAME_SIZE,
    MAX_HEADER_LIST_SIZE,
};
use super::Limits;

/// The HPACK dynamic table size we advertise (the RFC default).
pub const OUR_HEADER_TABLE_SIZE: u32 = 4096;
/// The initial window size every endpoint starts with (§6.9.2).
pub const DEFAULT_WINDOW: u32 = 65_535;
/// The initial SETTINGS_MAX_FRAME_SIZE (§6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;

/// The SETTINGS frame parameters we send first (§3.4). ENABLE_PUSH is not
/// sent: only a client may disable push, and a server never pushes.
pub fn ours(limits: &Limits) -> [(u16, u32); 5] {
    [
        (HEADER_TABLE_SIZE, OUR_HEADER_TABLE_SIZE),
        (MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams),
        (INITIAL_WINDOW_SIZE, limits.initial_window_size),
        (MAX_FRAME_SIZE, limits.max_frame_size),
        (MAX_HEADER_LIST_SIZE, limits.max_header_list_size),
    ]
}

/// The peer's settings that matter to a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerSettings {
    /// Size of the HPACK table our encoder may use.
    pub header_table_size: u32,
    /// Initial send window for each stream.
    pub initial_window_size: u32,
    /// Largest frame payload we may send.
    pub max_frame_size: u32,
}

impl Default for PeerSettings {
    fn default() -> PeerSettings {
        // §6.5.2 initial values.
        PeerSettings {
            header_table_size: 4096,
            initial_window_size: DEFAULT_WINDOW,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }
}

/// What changed when a SETTINGS frame was applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New INITIAL_WINDOW_SIZE minus the old one: every stream's send window moves by it (§6.9.2).
    pub window_delta: i64,
    /// The peer's new HEADER_TABLE_SIZE, if it sent one.
    pub header_table_size: Option<u32>,
}

impl PeerSettings {
    /// Applies an already-checked (non-ACK) SETTINGS frame, in order (§6.5.3:
    /// "the values in the SETTINGS frame MUST be processed in the order they appear").
    pub fn apply(&mut self, frame: &Settings<'_>) -> Changes {
        let old_window = self.initial_window_size;
        let mut changes = Changes::default();
        for (id, value) in frame.iter() {
            match id {
                HEADER_TABLE_SIZE => {
                    self.header_table_size = value;
                    changes.header_table_size = Some(value);
                }
                INITIAL_WINDOW_SIZE => self.initial_window_size = value,
                MAX_FRAME_SIZE => self.max_frame_size = value,
                // MAX_CONCURRENT_STREAMS and MAX_HEADER_LIST_SIZE limit what we initiate
                // or send; a server initiates nothing and sends small headers. ENABLE_PUSH:
                // we never push. Unknown identifiers are ignored (§6.5.2).
                _ => {}
            }
        }
        changes.window_delta = i64::from(self.initial_window_size) - i64::from(old_window);
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h2::frame::Head;

    #[test]
    fn apply_in_order() {
        let mut payload = Vec::new();
        for (id, v) in [
            (INITIAL_WINDOW_SIZE, 100u32),
            (MAX_FRAME_SIZE, 20_000),
            (INITIAL_WINDOW_SIZE, 70_000),
            (HEADER_TABLE_SIZE, 0),
        ] {
            payload.extend_from_slice(&id.to_be_bytes());
            payload.extend_from_slice(&v.to_be_bytes());
        }
        let head = Head {
            length: payload.len() as u32,
            kind: 4,
            flags: 0,
            stream_id: 0,
        };
        let frame = Settings::parse(&head, &payload).unwrap();
        let mut peer = PeerSettings::default();
        let c = peer.apply(&frame);
        assert_eq!(c.window_delta, 70_000 - 65_535);
        assert_eq!(c.header_table_size, Some(0));
        assert_eq!(peer.max_frame_size, 20_000);
    }
}
