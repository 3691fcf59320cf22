//! The Huffman code of RFC 7541 Appendix B.
//!
//! The code is canonical: within each length, codes are consecutive and
//! ordered by symbol. So the 257 code lengths below are the whole code; the
//! codes for encoding and the per-length tables for decoding are computed
//! from them at compile time (about 1.7 KB of read-only data in all).
//!
//! Decoding looks at the next 32 bits of input, left-aligned. For a canonical
//! code, the codes of length `L` and below, left-aligned, are exactly the
//! values under `LIMIT[L]`; so the shortest `L` with `bits < LIMIT[L]` is the
//! length of the next code, and its symbol is found by its offset from the
//! first code of that length.

use super::DecodeError;

/// Code length in bits of every symbol: bytes 0–255, then EOS (256).
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, // 0..=15
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, // 16..=31
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, // 32..=47
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, // 48..=63
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, // 64..=79
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, // 80..=95
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, // 96..=111
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, // 112..=127
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, // 128..=143
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, // 144..=159
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, // 160..=175
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, // 176..=191
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, // 192..=207
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, // 208..=223
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, // 224..=239
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, // 240..=255
    30, // EOS
];

/// The longest code (EOS and a few control bytes).
const MAX_LEN: usize = 30;

/// Index of EOS in [`Tables::sorted`] order: it is the last 30-bit code.
const EOS_RANK: u32 = 256;

/// Everything derived from [`LENGTHS`].
struct Tables {
    /// Code of each byte, right-aligned.
    codes: [u32; 256],
    /// Bytes ordered by (code length, value): the canonical order.
    /// EOS would be entry 256.
    sorted: [u8; 256],
    /// First code of each length, right-aligned.
    first: [u32; MAX_LEN + 1],
    /// Canonical rank of the first code of each length.
    rank: [u32; MAX_LEN + 1],
    /// One past the last code of each length, left-aligned in 32 bits (a u64
    /// because the last one is 2^32).
    limit: [u64; MAX_LEN + 1],
}

const fn build() -> Tables {
    let mut count = [0u32; MAX_LEN + 1];
    let mut s = 0;
    while s < LENGTHS.len() {
        count[LENGTHS[s] as usize] += 1;
        s += 1;
    }
    let mut t = Tables {
        codes: [0; 256],
        sorted: [0; 256],
        first: [0; MAX_LEN + 1],
        rank: [0; MAX_LEN + 1],
        limit: [0; MAX_LEN + 1],
    };
    let mut code = 0u32;
    let mut rank = 0u32;
    let mut len = 1;
    while len <= MAX_LEN {
        t.first[len] = code;
        t.rank[len] = rank;
        code += count[len];
        t.limit[len] = (code as u64) << (32 - len);
        // Symbols of this length, in order, take the consecutive codes.
        let mut s = 0;
        while s < 256 {
            if LENGTHS[s] as usize == len {
                t.codes[s] = t.first[len] + (rank - t.rank[len]);
                t.sorted[rank as usize] = s as u8;
                rank += 1;
            }
            s += 1;
        }
        code <<= 1;
        len += 1;
    }
    t
}

static TABLES: Tables = build();

// The code is complete and EOS is its very last code, so decoding can never
// run past `MAX_LEN` and rank 256 means EOS.
const _: () = {
    let t = build();
    assert!(t.limit[MAX_LEN] == 1 << 32);
    assert!(t.rank[MAX_LEN] + 3 == EOS_RANK);
    assert!(LENGTHS[256] as usize == MAX_LEN);
};

/// Length in bytes of the Huffman encoding of `src`.
pub(super) fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(LENGTHS[usize::from(b)]))
        .sum();
    bits.div_ceil(8)
}

/// Appends the Huffman encoding of `src`, padded with the most significant
/// bits of EOS (all ones), as §5.2 asks.
pub(super) fn encode(src: &[u8], dst: &mut Vec<u8>) {
    let t = &TABLES;
    // Bits not yet written are the low `pending` bits of `acc`; bits above
    // them are stale and shifted out.
    let mut acc: u64 = 0;
    let mut pending: u32 = 0;
    for &b in src {
        let len = u32::from(LENGTHS[usize::from(b)]);
        acc = (acc << len) | u64::from(t.codes[usize::from(b)]);
        pending += len;
        while pending >= 8 {
            pending -= 8;
            dst.push((acc >> pending) as u8);
        }
    }
    if pending > 0 {
        dst.push((acc << (8 - pending)) as u8 | (0xff >> pending));
    }
}

/// Appends the decoding of the Huffman string `src` to `dst`.
pub(super) fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), DecodeError> {
    let t = &TABLES;
    // The shortest code is 5 bits, so the output is at most 8/5 of the input
    // (whose length the caller has checked against the block).
    dst.reserve(src.len() + src.len() / 2 + src.len() / 10);
    // Unread bits, left-aligned: the next bit is bit 63.
    let mut acc: u64 = 0;
    let mut avail: usize = 0;
    let mut input = src.iter();
    loop {
        // Keep at least MAX_LEN bits in hand while input remains.
        while avail <= 56 {
            match input.next() {
                Some(&b) => {
                    acc |= u64::from(b) << (56 - avail);
                    avail += 8;
                }
                None => break,
            }
        }
        if avail == 0 {
            return Ok(());
        }
        let bits = acc >> 32;
        let mut len = 5; // the shortest code
        while len < MAX_LEN && bits >= t.limit[len] {
            len += 1;
        }
        if len > avail {
            // Input ended inside a code: what is left is padding. §5.2: "A
            // padding strictly longer than 7 bits MUST be treated as a decoding
            // error. A padding not corresponding to the most significant bits
            // of the code for the EOS symbol MUST be treated as a decoding
            // error."
            // (`avail` is 1..=29 here: input is exhausted and non-empty.)
            if avail > 7 || acc >> (64 - avail) != (1u64 << avail) - 1 {
                return Err(DecodeError::HuffmanPadding);
            }
            return Ok(());
        }
        let rank =
            t.rank[len].wrapping_add(((bits >> (32 - len)) as u32).wrapping_sub(t.first[len]));
        // §5.2: "A Huffman-encoded string literal containing the EOS symbol
        // MUST be treated as a decoding error."
        let sym = *t.sorted.get(rank as usize).ok_or(DecodeError::HuffmanEos)?;
        dst.push(sym);
        acc <<= len;
        avail -= len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Appendix B as printed in the RFC: (code, length) for bytes 0–255 and EOS.
    #[rustfmt::skip]
    const RFC_CODES: [(u32, u8); 257] = [
        (0x1ff8, 13), (0x7fffd8, 23), (0xfffffe2, 28), (0xfffffe3, 28), (0xfffffe4, 28), (0xfffffe5, 28),
        (0xfffffe6, 28), (0xfffffe7, 28), (0xfffffe8, 28), (0xffffea, 24), (0x3ffffffc, 30), (0xfffffe9, 28),
        (0xfffffea, 28), (0x3ffffffd, 30), (0xfffffeb, 28), (0xfffffec, 28), (0xfffffed, 28), (0xfffffee, 28),
        (0xfffffef, 28), (0xffffff0, 28), (0xffffff1, 28), (0xffffff2, 28), (0x3ffffffe, 30), (0xffffff3, 28),
        (0xffffff4, 28), (0xffffff5, 28), (0xffffff6, 28), (0xffffff7, 28), (0xffffff8, 28), (0xffffff9, 28),
        (0xffffffa, 28), (0xffffffb, 28), (0x14, 6), (0x3f8, 10), (0x3f9, 10), (0xffa, 12),
        (0x1ff9, 13), (0x15, 6), (0xf8, 8), (0x7fa, 11), (0x3fa, 10), (0x3fb, 10),
        (0xf9, 8), (0x7fb, 11), (0xfa, 8), (0x16, 6), (0x17, 6), (0x18, 6),
        (0x0, 5), (0x1, 5), (0x2, 5), (0x19, 6), (0x1a, 6), (0x1b, 6),
        (0x1c, 6), (0x1d, 6), (0x1e, 6), (0x1f, 6), (0x5c, 7), (0xfb, 8),
        (0x7ffc, 15), (0x20, 6), (0xffb, 12), (0x3fc, 10), (0x1ffa, 13), (0x21, 6),
        (0x5d, 7), (0x5e, 7), (0x5f, 7), (0x60, 7), (0x61, 7), (0x62, 7),
        (0x63, 7), (0x64, 7), (0x65, 7), (0x66, 7), (0x67, 7), (0x68, 7),
        (0x69, 7), (0x6a, 7), (0x6b, 7), (0x6c, 7), (0x6d, 7), (0x6e, 7),
        (0x6f, 7), (0x70, 7), (0x71, 7), (0x72, 7), (0xfc, 8), (0x73, 7),
        (0xfd, 8), (0x1ffb, 13), (0x7fff0, 19), (0x1ffc, 13), (0x3ffc, 14), (0x22, 6),
        (0x7ffd, 15), (0x3, 5), (0x23, 6), (0x4, 5), (0x24, 6), (0x5, 5),
        (0x25, 6), (0x26, 6), (0x27, 6), (0x6, 5), (0x74, 7), (0x75, 7),
        (0x28, 6), (0x29, 6), (0x2a, 6), (0x7, 5), (0x2b, 6), (0x76, 7),
        (0x2c, 6), (0x8, 5), (0x9, 5), (0x2d, 6), (0x77, 7), (0x78, 7),
        (0x79, 7), (0x7a, 7), (0x7b, 7), (0x7ffe, 15), (0x7fc, 11), (0x3ffd, 14),
        (0x1ffd, 13), (0xffffffc, 28), (0xfffe6, 20), (0x3fffd2, 22), (0xfffe7, 20), (0xfffe8, 20),
        (0x3fffd3, 22), (0x3fffd4, 22), (0x3fffd5, 22), (0x7fffd9, 23), (0x3fffd6, 22), (0x7fffda, 23),
        (0x7fffdb, 23), (0x7fffdc, 23), (0x7fffdd, 23), (0x7fffde, 23), (0xffffeb, 24), (0x7fffdf, 23),
        (0xffffec, 24), (0xffffed, 24), (0x3fffd7, 22), (0x7fffe0, 23), (0xffffee, 24), (0x7fffe1, 23),
        (0x7fffe2, 23), (0x7fffe3, 23), (0x7fffe4, 23), (0x1fffdc, 21), (0x3fffd8, 22), (0x7fffe5, 23),
        (0x3fffd9, 22), (0x7fffe6, 23), (0x7fffe7, 23), (0xffffef, 24), (0x3fffda, 22), (0x1fffdd, 21),
        (0xfffe9, 20), (0x3fffdb, 22), (0x3fffdc, 22), (0x7fffe8, 23), (0x7fffe9, 23), (0x1fffde, 21),
        (0x7fffea, 23), (0x3fffdd, 22), (0x3fffde, 22), (0xfffff0, 24), (0x1fffdf, 21), (0x3fffdf, 22),
        (0x7fffeb, 23), (0x7fffec, 23), (0x1fffe0, 21), (0x1fffe1, 21), (0x3fffe0, 22), (0x1fffe2, 21),
        (0x7fffed, 23), (0x3fffe1, 22), (0x7fffee, 23), (0x7fffef, 23), (0xfffea, 20), (0x3fffe2, 22),
        (0x3fffe3, 22), (0x3fffe4, 22), (0x7ffff0, 23), (0x3fffe5, 22), (0x3fffe6, 22), (0x7ffff1, 23),
        (0x3ffffe0, 26), (0x3ffffe1, 26), (0xfffeb, 20), (0x7fff1, 19), (0x3fffe7, 22), (0x7ffff2, 23),
        (0x3fffe8, 22), (0x1ffffec, 25), (0x3ffffe2, 26), (0x3ffffe3, 26), (0x3ffffe4, 26), (0x7ffffde, 27),
        (0x7ffffdf, 27), (0x3ffffe5, 26), (0xfffff1, 24), (0x1ffffed, 25), (0x7fff2, 19), (0x1fffe3, 21),
        (0x3ffffe6, 26), (0x7ffffe0, 27), (0x7ffffe1, 27), (0x3ffffe7, 26), (0x7ffffe2, 27), (0xfffff2, 24),
        (0x1fffe4, 21), (0x1fffe5, 21), (0x3ffffe8, 26), (0x3ffffe9, 26), (0xffffffd, 28), (0x7ffffe3, 27),
        (0x7ffffe4, 27), (0x7ffffe5, 27), (0xfffec, 20), (0xfffff3, 24), (0xfffed, 20), (0x1fffe6, 21),
        (0x3fffe9, 22), (0x1fffe7, 21), (0x1fffe8, 21), (0x7ffff3, 23), (0x3fffea, 22), (0x3fffeb, 22),
        (0x1ffffee, 25), (0x1ffffef, 25), (0xfffff4, 24), (0xfffff5, 24), (0x3ffffea, 26), (0x7ffff4, 23),
        (0x3ffffeb, 26), (0x7ffffe6, 27), (0x3ffffec, 26), (0x3ffffed, 26), (0x7ffffe7, 27), (0x7ffffe8, 27),
        (0x7ffffe9, 27), (0x7ffffea, 27), (0x7ffffeb, 27), (0xffffffe, 28), (0x7ffffec, 27), (0x7ffffed, 27),
        (0x7ffffee, 27), (0x7ffffef, 27), (0x7fffff0, 27), (0x3ffffee, 26), (0x3fffffff, 30),
    ];

    #[test]
    fn derived_codes_match_appendix_b() {
        for (sym, &(code, len)) in RFC_CODES.iter().enumerate() {
            assert_eq!(LENGTHS[sym], len, "length of {sym}");
            if sym < 256 {
                assert_eq!(TABLES.codes[sym], code, "code of {sym}");
            }
        }
        // EOS: the all-ones 30-bit code, one past the last byte's rank.
        assert_eq!(RFC_CODES[256].0, (1 << 30) - 1);
    }

    #[test]
    fn every_byte_round_trips_alone_and_together() {
        let all: Vec<u8> = (0..=255).collect();
        for b in 0..=255u8 {
            let mut enc = Vec::new();
            encode(&[b], &mut enc);
            assert_eq!(enc.len(), encoded_len(&[b]));
            let mut dec = Vec::new();
            assert_eq!(decode(&enc, &mut dec), Ok(()));
            assert_eq!(dec, [b]);
        }
        let mut enc = Vec::new();
        encode(&all, &mut enc);
        assert_eq!(enc.len(), encoded_len(&all));
        let mut dec = Vec::new();
        assert_eq!(decode(&enc, &mut dec), Ok(()));
        assert_eq!(dec, all);
    }

    /// The C.4.1 authority: "www.example.com".
    #[test]
    fn rfc_example_string() {
        let coded = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut enc = Vec::new();
        encode(b"www.example.com", &mut enc);
        assert_eq!(enc, coded);
        let mut dec = Vec::new();
        assert_eq!(decode(&coded, &mut dec), Ok(()));
        assert_eq!(dec, b"www.example.com");
    }

    #[test]
    fn empty_string() {
        let mut dec = Vec::new();
        assert_eq!(decode(&[], &mut dec), Ok(()));
        assert!(dec.is_empty());
        assert_eq!(encoded_len(&[]), 0);
    }

    #[test]
    fn padding_longer_than_seven_bits_is_rejected() {
        // 'a' is 00011; 0x1f pads it with 3 ones, then a whole byte of ones.
        let mut dec = Vec::new();
        assert_eq!(decode(&[0x1f], &mut dec), Ok(()));
        assert_eq!(dec, b"a");
        assert_eq!(
            decode(&[0x1f, 0xff], &mut Vec::new()),
            Err(DecodeError::HuffmanPadding)
        );
        // A string of padding alone: 8 ones.
        assert_eq!(
            decode(&[0xff], &mut Vec::new()),
            Err(DecodeError::HuffmanPadding)
        );
    }

    #[test]
    fn padding_that_is_not_all_ones_is_rejected() {
        // 'a' followed by 000.
        assert_eq!(
            decode(&[0x18], &mut Vec::new()),
            Err(DecodeError::HuffmanPadding)
        );
        // 'a' followed by 110.
        assert_eq!(
            decode(&[0x1e], &mut Vec::new()),
            Err(DecodeError::HuffmanPadding)
        );
    }

    #[test]
    fn eos_in_the_string_is_rejected() {
        // EOS (30 ones) plus two bits of padding.
        assert_eq!(
            decode(&[0xff, 0xff, 0xff, 0xff], &mut Vec::new()),
            Err(DecodeError::HuffmanEos)
        );
        // 'a' (5 bits), EOS (30 bits), 5 bits of padding.
        assert_eq!(
            decode(&[0x1f, 0xff, 0xff, 0xff, 0xff], &mut Vec::new()),
            Err(DecodeError::HuffmanEos)
        );
    }
}
