//! String literals (RFC 7541 §5.2): a Huffman flag, a 7-bit-prefix length,
//! then the raw or Huffman-coded bytes.

use super::{huffman, integer, DecodeError};

/// Reads the string literal at `src[*pos]` and advances `*pos` past it.
/// Raw strings are returned in place; Huffman strings are decoded into `buf`
/// (cleared first). The length is checked against the block before anything
/// is decoded or allocated.
pub(super) fn decode<'a>(
    src: &'a [u8],
    pos: &mut usize,
    buf: &'a mut Vec<u8>,
) -> Result<&'a [u8], DecodeError> {
    let huffman = src.get(*pos).ok_or(DecodeError::Truncated)? & 0x80 != 0;
    let len = integer::decode(src, pos, 7)?;
    let end = pos.checked_add(len).ok_or(DecodeError::StringTooLong)?;
    let bytes = src.get(*pos..end).ok_or(DecodeError::StringTooLong)?;
    *pos = end;
    if !huffman {
        return Ok(bytes);
    }
    buf.clear();
    huffman::decode(bytes, buf)?;
    Ok(buf)
}

/// Appends `s` as a string literal, Huffman-coded only when that is shorter.
pub(super) fn encode(s: &[u8], dst: &mut Vec<u8>) {
    let coded_len = huffman::encoded_len(s);
    if coded_len < s.len() {
        integer::encode(coded_len, 7, 0x80, dst);
        huffman::encode(s, dst);
    } else {
        integer::encode(s.len(), 7, 0, dst);
        dst.extend_from_slice(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_huffman_literals_decode() {
        // C.2.2's value: raw "/sample/path".
        let raw = b"\x0c/sample/path";
        let (mut pos, mut buf) = (0, Vec::new());
        assert_eq!(decode(raw, &mut pos, &mut buf), Ok(&b"/sample/path"[..]));
        assert_eq!(pos, raw.len());
        // C.4.2's value: Huffman "no-cache".
        let coded = [0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf];
        let mut pos = 0;
        assert_eq!(decode(&coded, &mut pos, &mut buf), Ok(&b"no-cache"[..]));
        assert_eq!(pos, coded.len());
    }

    #[test]
    fn encode_picks_the_shorter_form() {
        let mut out = Vec::new();
        encode(b"no-cache", &mut out);
        assert_eq!(out, [0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf]);
        // Control bytes have long codes: raw is shorter.
        out.clear();
        encode(&[0, 1, 2], &mut out);
        assert_eq!(out, [0x03, 0, 1, 2]);
        out.clear();
        encode(b"", &mut out);
        assert_eq!(out, [0x00]);
    }

    #[test]
    fn length_past_the_block_is_rejected_before_decoding() {
        let (mut pos, mut buf) = (0, Vec::new());
        assert_eq!(
            decode(b"\x0acus", &mut pos, &mut buf),
            Err(DecodeError::StringTooLong)
        );
        // A huge Huffman length must not reserve memory: it fails the check.
        let mut pos = 0;
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff, 0x7f], &mut pos, &mut buf),
            Err(DecodeError::StringTooLong)
        );
        assert_eq!(buf.capacity(), 0);
        let mut pos = 0;
        assert_eq!(decode(&[], &mut pos, &mut buf), Err(DecodeError::Truncated));
    }
}
