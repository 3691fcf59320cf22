//! HPACK, the HTTP/2 header compression of RFC 7541.
//!
//! One [`Decoder`] per connection turns the peer's header blocks (a HEADERS
//! frame plus its CONTINUATIONs, joined) into `(name, value)` fields; one
//! [`Encoder`] per connection turns our response headers and trailers into
//! blocks. Both keep a dynamic table that must stay in step with the peer's,
//! so every block of a connection goes through the same instance, in order.
//!
//! | file | RFC 7541 |
//! | --- | --- |
//! | `integer.rs` | §5.1 prefix integers (with an overflow cap) |
//! | `string.rs` | §5.2 string literals, raw or Huffman |
//! | `huffman.rs` | Appendix B, the canonical Huffman code |
//! | `table.rs` | Appendix A static table, §4 dynamic table (size accounting, eviction) |
//! | `decoder.rs` | §6 field representations, §4.2 table size updates, the limits |
//! | `encoder.rs` | the response side: static/dynamic indexing, Huffman when shorter |
//!
//! # Why not a crate
//!
//! We write HPACK ourselves. The runtime-free server has a size budget of
//! 400 KB stripped on aarch64 for the whole binary, and a std-only TCP
//! program already takes about 332 KB of it. The `h2` crate keeps its HPACK
//! internal (and brings `bytes`, `http`, `tokio-util`); of the standalone
//! crates, `hpack` 0.3 (last released 2015) and its fork `loona-hpack` do
//! not Huffman-encode, `hpack_codec` (2019) brings a large dependency tree,
//! and none lets the caller bound table size updates and the header list the
//! way RFC 9113 needs. What we need is small: the limits below, and a compact
//! Huffman code — it is canonical, so both directions are derived at compile
//! time from the 257 code lengths, and the decoder walks about 1.7 KB of
//! tables instead of the usual 12 KB state machine. Measured on aarch64
//! (release profile, stripped): decoder + encoder add about 12 KB of code
//! and data to a std-only program.
//!
//! # Limits (what a hostile peer cannot make us do)
//!
//! * a table size update above the size we advertise, or one that is not at
//!   the start of a block, is an error (§4.2, §6.3);
//! * index 0 or an index past the tables is an error (§2.3.3, §6.1);
//! * integers are capped at 2^28 plus the prefix (§5.1 leaves the bound to us);
//! * a string may not claim more bytes than the block still holds, and is
//!   only decoded after that check (§5.2);
//! * Huffman padding longer than 7 bits, padding that is not all ones, and
//!   an EOS symbol inside a string are errors (§5.2);
//! * the header list size (name + value + 32 per field, RFC 9113 §6.5.2) is
//!   checked, but reported only once the whole block has been decoded, so the
//!   dynamic table stays in step and the stream alone can be refused.

mod decoder;
mod encoder;
mod huffman;
mod integer;
mod string;
mod table;

pub use decoder::Decoder;
pub use encoder::Encoder;

use std::fmt;

/// Why a header block could not be decoded.
///
/// Every variant except [`DecodeError::HeaderListTooLarge`] is a connection
/// error of type COMPRESSION_ERROR (RFC 9113 §4.3): the dynamic table may now
/// differ from the peer's, so no later block can be trusted.
/// `HeaderListTooLarge` is reported only after the whole block was decoded,
/// so the table is still in step and the caller can refuse just that stream
/// (HTTP 431, or RST_STREAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The block ended in the middle of a field representation or integer.
    Truncated,
    /// An integer did not fit the cap (2^28 plus its prefix).
    IntegerOverflow,
    /// Index 0, or an index past the static and dynamic tables.
    InvalidIndex,
    /// A string literal claims more bytes than the block still holds.
    StringTooLong,
    /// Huffman padding longer than 7 bits or not all ones.
    HuffmanPadding,
    /// The Huffman EOS symbol inside a string.
    HuffmanEos,
    /// A dynamic table size update above the size we advertised.
    TableSizeUpdateTooLarge,
    /// A dynamic table size update after the first field of a block.
    TableSizeUpdateNotAtStart,
    /// The decoded fields exceed the header list size limit.
    HeaderListTooLarge,
}

impl DecodeError {
    /// True for the errors that must end the connection with
    /// COMPRESSION_ERROR; false only for [`DecodeError::HeaderListTooLarge`].
    pub fn is_compression_error(self) -> bool {
        self != DecodeError::HeaderListTooLarge
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::Truncated => "hpack: header block truncated",
            DecodeError::IntegerOverflow => "hpack: integer too large",
            DecodeError::InvalidIndex => "hpack: invalid table index",
            DecodeError::StringTooLong => "hpack: string longer than the header block",
            DecodeError::HuffmanPadding => "hpack: invalid Huffman padding",
            DecodeError::HuffmanEos => "hpack: Huffman EOS in string",
            DecodeError::TableSizeUpdateTooLarge => {
                "hpack: table size update above SETTINGS_HEADER_TABLE_SIZE"
            }
            DecodeError::TableSizeUpdateNotAtStart => {
                "hpack: table size update after a header field"
            }
            DecodeError::HeaderListTooLarge => "hpack: header list too large",
        })
    }
}

impl std::error::Error for DecodeError {}
