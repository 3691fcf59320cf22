//! The 9-byte frame header every HTTP/2 frame starts with (RFC 9113 §4.1).

/// Length of the frame header.
pub const HEAD_LEN: usize = 9;

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Payload length (24 bits).
    pub length: u32,
    /// Frame type (see [`super::kind`]).
    pub kind: u8,
    /// Type-specific flags.
    pub flags: u8,
    /// Stream identifier (31 bits).
    pub stream_id: u32,
}

impl Head {
    /// Decodes a header from the first 9 bytes of `b`; `None` if `b` is shorter.
    pub fn parse(b: &[u8]) -> Option<Head> {
        let h: &[u8; HEAD_LEN] = b.get(..HEAD_LEN)?.try_into().ok()?;
        Some(Head {
            length: u32::from_be_bytes([0, h[0], h[1], h[2]]),
            kind: h[3],
            flags: h[4],
            // §4.1: the reserved bit "MUST remain unset (0x0) when sending and MUST be
            // ignored when receiving".
            stream_id: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        })
    }

    /// Appends the encoded header to `dst`. `length` must fit in 24 bits.
    pub fn encode(&self, dst: &mut Vec<u8>) {
        let len = self.length.to_be_bytes();
        dst.extend_from_slice(&len[1..]);
        dst.push(self.kind);
        dst.push(self.flags);
        dst.extend_from_slice(&(self.stream_id & 0x7fff_ffff).to_be_bytes());
    }

    /// Whether `flag` is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_reserved_bit() {
        let h = Head {
            length: 0x01_02_03,
            kind: 4,
            flags: 1,
            stream_id: 7,
        };
        let mut b = Vec::new();
        h.encode(&mut b);
        assert_eq!(b, [1, 2, 3, 4, 1, 0, 0, 0, 7]);
        assert_eq!(Head::parse(&b), Some(h));
        b[5] |= 0x80;
        assert_eq!(Head::parse(&b).map(|h| h.stream_id), Some(7));
        assert_eq!(Head::parse(&b[..8]), None);
    }
}
