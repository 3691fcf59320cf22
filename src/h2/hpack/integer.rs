//! Prefix integers (RFC 7541 §5.1).
//!
//! An integer fills the low `N` bits of a byte whose high bits carry flags;
//! values that do not fit continue in 7-bit groups, least significant first,
//! with the top bit of each byte saying "more follows".

use super::DecodeError;

/// Continuation bytes we accept after the prefix: 4 × 7 = 28 bits.
///
/// §5.1: "Integer encodings that exceed implementation limits ... MUST be
/// treated as decoding errors." Nothing in a header block needs more than a
/// length or index below 2^28 (frames are at most 2^24 bytes).
const MAX_CONTINUATION_BYTES: u32 = 4;

/// Decodes an integer with an `prefix_bits`-bit prefix starting at
/// `src[*pos]`, advancing `*pos` past it. The caller has already read the
/// flag bits of the first byte; they are masked off here.
pub(super) fn decode(src: &[u8], pos: &mut usize, prefix_bits: u32) -> Result<usize, DecodeError> {
    let max_prefix = (1usize << prefix_bits) - 1;
    let first = *src.get(*pos).ok_or(DecodeError::Truncated)?;
    *pos += 1;
    let mut value = usize::from(first) & max_prefix;
    if value < max_prefix {
        return Ok(value);
    }
    let mut shift = 0u32;
    loop {
        let b = *src.get(*pos).ok_or(DecodeError::Truncated)?;
        *pos += 1;
        value += usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            return Ok(value);
        }
        if shift >= 7 * MAX_CONTINUATION_BYTES {
            return Err(DecodeError::IntegerOverflow);
        }
    }
}

/// Appends `value` with an `prefix_bits`-bit prefix; `flags` holds the bits
/// above the prefix in the first byte.
pub(super) fn encode(value: usize, prefix_bits: u32, flags: u8, dst: &mut Vec<u8>) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        dst.push(flags | value as u8);
        return;
    }
    dst.push(flags | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 0x80 {
        dst.push(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.push(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(value: usize, prefix_bits: u32, bytes: &[u8]) {
        let mut out = Vec::new();
        encode(value, prefix_bits, 0, &mut out);
        assert_eq!(out, bytes, "encode {value}");
        let mut pos = 0;
        assert_eq!(decode(bytes, &mut pos, prefix_bits), Ok(value));
        assert_eq!(pos, bytes.len());
    }

    /// RFC 7541 C.1.1: 10 with a 5-bit prefix.
    #[test]
    fn c_1_1_small_value() {
        round(10, 5, &[0x0a]);
    }

    /// RFC 7541 C.1.2: 1337 with a 5-bit prefix.
    #[test]
    fn c_1_2_continued_value() {
        round(1337, 5, &[0x1f, 0x9a, 0x0a]);
    }

    /// RFC 7541 C.1.3: 42 starting at an octet boundary (8-bit prefix).
    #[test]
    fn c_1_3_full_octet_prefix() {
        round(42, 8, &[0x2a]);
    }

    #[test]
    fn flags_are_kept_and_masked() {
        let mut out = Vec::new();
        encode(62, 6, 0x40, &mut out);
        assert_eq!(out, [0x7e]);
        let mut pos = 0;
        assert_eq!(decode(&out, &mut pos, 6), Ok(62));
    }

    #[test]
    fn prefix_boundaries_round_trip() {
        for bits in 1..=8 {
            let max = (1usize << bits) - 1;
            for value in [
                0,
                max - 1,
                max,
                max + 1,
                max + 127,
                max + 128,
                1 << 20,
                (1 << 28) - 1,
            ] {
                let mut out = Vec::new();
                encode(value, bits, 0, &mut out);
                let mut pos = 0;
                assert_eq!(decode(&out, &mut pos, bits), Ok(value), "{value} /{bits}");
                assert_eq!(pos, out.len());
            }
        }
    }

    #[test]
    fn truncated_integer_is_an_error() {
        let mut pos = 0;
        assert_eq!(decode(&[], &mut pos, 5), Err(DecodeError::Truncated));
        let mut pos = 0;
        assert_eq!(
            decode(&[0x1f, 0x9a], &mut pos, 5),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn fifth_continuation_byte_overflows() {
        // Four continuation bytes are fine, even when they are zero padding.
        let mut pos = 0;
        assert_eq!(decode(&[0x1f, 0x80, 0x80, 0x80, 0x00], &mut pos, 5), Ok(31));
        let mut pos = 0;
        assert_eq!(
            decode(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x0f], &mut pos, 5),
            Err(DecodeError::IntegerOverflow)
        );
        let mut pos = 0;
        assert_eq!(
            decode(&[0x1f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80], &mut pos, 5),
            Err(DecodeError::IntegerOverflow)
        );
    }
}
