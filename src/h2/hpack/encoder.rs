//! The HPACK encoder, for our responses and trailers (RFC 7541 §6).
//!
//! What a gRPC server sends is nearly the same on every call (`:status 200`,
//! `content-type: application/grpc`, `grpc-status: 0`), so the encoder:
//!
//! * uses a static-table index when the field is there exactly (`:status 200`
//!   is the single byte 0x88);
//! * otherwise indexes the field into a small dynamic table, so the next
//!   response sends it as one byte too;
//! * never indexes fields whose value changes per response
//!   (`grpc-message`, ...) and sends credentials as never-indexed (§7.1.3);
//! * Huffman-codes a string only when that is shorter.

use super::table::{self, DynamicTable};
use super::{integer, string};

/// The largest dynamic table we keep, whatever the peer allows. A gRPC
/// response's repeated fields take about 200 bytes; this bounds our memory
/// per connection (and the peer's, which mirrors this table).
const TABLE_CAP: usize = 512;

/// SETTINGS_HEADER_TABLE_SIZE before the peer's SETTINGS say otherwise
/// (RFC 9113 §6.5.2).
const DEFAULT_PEER_TABLE_SIZE: usize = 4096;

/// Fields whose values differ from response to response: indexing them would
/// only evict the entries that repeat.
const NOT_INDEXED: [&[u8]; 5] = [
    b"grpc-message",
    b"grpc-status-details-bin",
    b"content-length",
    b"date",
    b"grpc-timeout",
];

/// Credentials: §7.1.3 never-indexed literals, so no intermediary indexes them.
const SENSITIVE: [&[u8]; 4] = [
    b"authorization",
    b"proxy-authorization",
    b"cookie",
    b"set-cookie",
];

/// Encodes the header blocks we send on one connection, in order.
#[derive(Debug)]
pub struct Encoder {
    /// Mirror of the peer decoder's dynamic table; its maximum is the size we
    /// last chose (at most [`TABLE_CAP`] and the peer's setting).
    table: DynamicTable,
    /// The smallest maximum chosen since the last block, when a dynamic table
    /// size update is owed (§4.2: signal the smallest, then the final one).
    pending_update: Option<usize>,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder for a new connection. The peer's decoder starts with a
    /// 4096-byte table; the first block shrinks it to our cap.
    pub fn new() -> Encoder {
        let mut e = Encoder {
            table: DynamicTable::new(DEFAULT_PEER_TABLE_SIZE),
            pending_update: None,
        };
        e.set_max_table_size(DEFAULT_PEER_TABLE_SIZE);
        e
    }

    /// Current size in bytes of the dynamic table (RFC 7541 §4.1), as the
    /// peer's decoder sees it once it has the blocks encoded so far.
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Peer's SETTINGS_HEADER_TABLE_SIZE changed; the next block starts with a size update if needed.
    ///
    /// Call it when applying the peer's SETTINGS, before the next block is
    /// encoded. We use `min(n, 512)`. Entries are evicted at once, so no
    /// later field refers to one the peer will drop; 0 turns indexing off.
    pub fn set_max_table_size(&mut self, n: usize) {
        let size = n.min(TABLE_CAP);
        if size == self.table.max_size() && self.pending_update.is_none() {
            return;
        }
        self.pending_update = Some(self.pending_update.map_or(size, |p| p.min(size)));
        self.table.set_max_size(size);
    }

    /// Appends one header block holding `fields` to `dst`.
    ///
    /// Names must be lower case (RFC 9113 §8.2.1); pseudo-headers first.
    pub fn encode<'a>(
        &mut self,
        fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        dst: &mut Vec<u8>,
    ) {
        if let Some(smallest) = self.pending_update.take() {
            // §6.3 Dynamic Table Size Update: 001xxxxx, 5-bit prefix, at the
            // start of the block (§4.2).
            let size = self.table.max_size();
            if smallest < size {
                integer::encode(smallest, 5, 0x20, dst);
            }
            integer::encode(size, 5, 0x20, dst);
        }
        for (name, value) in fields {
            self.encode_field(name, value, dst);
        }
    }

    fn encode_field(&mut self, name: &[u8], value: &[u8], dst: &mut Vec<u8>) {
        // §6.1 Indexed Header Field: 1xxxxxxx, 7-bit index.
        let (static_exact, static_name) = table::find_static(name, value);
        if let Some(index) = static_exact {
            integer::encode(index, 7, 0x80, dst);
            return;
        }
        let (dynamic_exact, dynamic_name) = self.table.find(name, value);
        if let Some(i) = dynamic_exact {
            integer::encode(62 + i, 7, 0x80, dst);
            return;
        }
        // §6.2 literals, with the name by index when a table has it (0: the
        // name follows as a string).
        let name_index = static_name.or(dynamic_name.map(|i| 62 + i)).unwrap_or(0);
        let sensitive = SENSITIVE.contains(&name);
        // An entry over half the table would evict the ones that repeat.
        let index = !sensitive
            && !NOT_INDEXED.contains(&name)
            && table::entry_size(name, value) <= self.table.max_size() / 2;
        if index {
            integer::encode(name_index, 6, 0x40, dst); // 01xxxxxx incremental indexing
        } else if sensitive {
            integer::encode(name_index, 4, 0x10, dst); // 0001xxxx never indexed
        } else {
            integer::encode(name_index, 4, 0x00, dst); // 0000xxxx without indexing
        }
        if name_index == 0 {
            string::encode(name, dst);
        }
        string::encode(value, dst);
        if index {
            self.table.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decoder::tests::{decode_all, hex, Fields};
    use super::super::{huffman, DecodeError, Decoder};
    use super::*;

    fn block(e: &mut Encoder, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        e.encode(
            fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            &mut out,
        );
        out
    }

    fn owned(fields: &[(&str, &str)]) -> Fields {
        fields
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    const HEADERS: [(&str, &str); 2] = [(":status", "200"), ("content-type", "application/grpc")];
    const TRAILERS: [(&str, &str); 2] = [("grpc-status", "0"), ("grpc-message", "")];

    #[test]
    fn first_block_shrinks_the_table_then_fields_follow() {
        let mut e = Encoder::new();
        let b = block(&mut e, &HEADERS);
        // Size update to 512 (0x3f e1 03), :status 200 (0x88), then
        // content-type by static name 31 with incremental indexing (0x5f).
        assert_eq!(&b[..5], &[0x3f, 0xe1, 0x03, 0x88, 0x5f]);
        let mut d = Decoder::new(4096, 16384);
        assert_eq!(decode_all(&mut d, &b), Ok(owned(&HEADERS)));
        assert_eq!(d.table_size(), e.table_size());
        assert_eq!(e.table_size(), 12 + 16 + 32);
    }

    #[test]
    fn repeated_response_fields_cost_one_byte_each() {
        let mut e = Encoder::new();
        let mut d = Decoder::new(4096, 16384);
        for fields in [&HEADERS[..], &TRAILERS[..]] {
            let b = block(&mut e, fields);
            assert_eq!(decode_all(&mut d, &b), Ok(owned(fields)));
        }
        // Second call: every field but the empty grpc-message is one byte.
        let h = block(&mut e, &HEADERS);
        assert_eq!(h.len(), 2, "{h:x?}");
        let t = block(&mut e, &TRAILERS);
        // grpc-status: 0 one byte; grpc-message a literal with a (Huffman)
        // name, not indexed.
        assert_eq!(
            t.len(),
            1 + 1 + (1 + huffman::encoded_len(b"grpc-message")) + 1,
            "{t:x?}"
        );
        assert_eq!(t[1], 0x00);
        assert_eq!(decode_all(&mut d, &h), Ok(owned(&HEADERS)));
        assert_eq!(decode_all(&mut d, &t), Ok(owned(&TRAILERS)));
        assert_eq!(d.table_size(), e.table_size());
    }

    #[test]
    fn varying_and_sensitive_fields_are_not_indexed() {
        let mut e = Encoder::new();
        let b = block(
            &mut e,
            &[("grpc-message", "oops"), ("authorization", "secret")],
        );
        assert_eq!(e.table_size(), 0);
        // After the size update: without indexing (new name), then never
        // indexed with static name 23 (4-bit prefix: 15 + 8).
        assert_eq!(b[3], 0x00);
        let at = 4 + 1 + huffman::encoded_len(b"grpc-message") + 1 + huffman::encoded_len(b"oops");
        assert_eq!(&b[at..at + 2], &[0x1f, 0x08], "{b:x?}");
        let mut d = Decoder::new(4096, 16384);
        assert_eq!(
            decode_all(&mut d, &b),
            Ok(owned(&[
                ("grpc-message", "oops"),
                ("authorization", "secret")
            ]))
        );
    }

    #[test]
    fn huffman_only_when_shorter() {
        let mut e = Encoder::new();
        e.set_max_table_size(0);
        let b = block(&mut e, &[("x-bin", "\u{1}\u{2}"), ("x-text", "no-cache")]);
        // 0x20: size update to 0 (once: the smallest and final sizes agree).
        // x-bin: raw name (Huffman "x-bin" is 4 bytes < 5, so Huffman),
        // raw value (control bytes have long codes).
        let mut d = Decoder::new(4096, 16384);
        assert_eq!(
            decode_all(&mut d, &b),
            Ok(owned(&[("x-bin", "\u{1}\u{2}"), ("x-text", "no-cache")]))
        );
        assert_eq!(b[0], 0x20);
        assert_eq!(b[1], 0x00);
        assert_eq!(b[2], 0x84); // Huffman name, 4 bytes
        assert_eq!(&b[7..10], &[0x02, 0x01, 0x02]); // raw value
        assert!(
            b.ends_with(&[0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf]),
            "{b:x?}"
        );
    }

    #[test]
    fn table_size_zero_disables_indexing() {
        let mut e = Encoder::new();
        let mut d = Decoder::new(4096, 16384);
        assert!(decode_all(&mut d, &block(&mut e, &HEADERS)).is_ok());
        assert!(e.table_size() > 0);
        e.set_max_table_size(0);
        assert_eq!(e.table_size(), 0);
        let b = block(&mut e, &HEADERS);
        assert_eq!(b[0], 0x20);
        assert_eq!(b[1], 0x88);
        assert_eq!(b[2], 0x0f, "content-type without indexing: 0000 1111 + 16"); // 31 = 15 + 16
        assert_eq!(decode_all(&mut d, &b), Ok(owned(&HEADERS)));
        assert_eq!(d.table_size(), 0);
        let again = block(&mut e, &HEADERS);
        assert_eq!(again, b[1..]);
    }

    #[test]
    fn shrink_then_grow_signals_the_smallest_then_the_final_size() {
        let mut e = Encoder::new();
        let mut d = Decoder::new(4096, 16384);
        assert!(decode_all(&mut d, &block(&mut e, &HEADERS)).is_ok());
        e.set_max_table_size(10);
        e.set_max_table_size(4096);
        let b = block(&mut e, &HEADERS);
        // 10 (0x2a), then 512 (0x3f e1 03); the table was emptied by the 10.
        assert_eq!(&b[..5], &[0x2a, 0x3f, 0xe1, 0x03, 0x88]);
        assert_eq!(b[5], 0x5f);
        assert_eq!(decode_all(&mut d, &b), Ok(owned(&HEADERS)));
        assert_eq!(d.table_size(), e.table_size());
        // No change: no update.
        e.set_max_table_size(8192);
        assert_eq!(block(&mut e, &HEADERS), [0x88, 0xbe]);
    }

    #[test]
    fn peer_below_our_cap_is_respected() {
        let mut e = Encoder::new();
        e.set_max_table_size(100);
        let mut d = Decoder::new(100, 16384);
        // The decoder would refuse an update above 100.
        let b = block(&mut e, &HEADERS);
        assert_eq!(&b[..2], &[0x3f, 0x45]); // 100 = 31 + 69
        assert_eq!(decode_all(&mut d, &b), Ok(owned(&HEADERS)));
        // content-type (60) is over half of 100: not indexed.
        assert_eq!(e.table_size(), 0);
        assert_eq!(d.table_size(), 0);
        let mut big = Decoder::new(50, 16384);
        assert_eq!(
            decode_all(&mut big, &b),
            Err(DecodeError::TableSizeUpdateTooLarge)
        );
    }

    #[test]
    fn static_table_exact_matches_are_one_byte() {
        let mut e = Encoder::new();
        e.set_max_table_size(0);
        let b = block(
            &mut e,
            &[(":status", "200"), (":status", "404"), (":method", "POST")],
        );
        assert_eq!(b, hex("20 88 8d 83"));
    }

    /// Tiny xorshift64 PRNG: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn bytes(&mut self, max_len: usize) -> Vec<u8> {
            let len = self.below(max_len + 1);
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    fn random_field(rng: &mut Rng) -> (Vec<u8>, Vec<u8>) {
        const NAMES: [&str; 8] = [
            ":status",
            "content-type",
            "grpc-status",
            "grpc-message",
            "x-custom",
            "cookie",
            "date",
            "accept",
        ];
        const TEXT: &[u8] = b"abcdefghijklmnopqrstuvwxyz-/ 0123";
        const VALUES: [&str; 6] = [
            "200",
            "application/grpc",
            "0",
            "",
            "gzip, deflate",
            "no-cache",
        ];
        let name = match rng.below(4) {
            0 => rng.bytes(20),
            _ => NAMES[rng.below(NAMES.len())].as_bytes().to_vec(),
        };
        let value = match rng.below(6) {
            0 => Vec::new(),
            1 => rng.bytes(8),
            2 => rng.bytes(600),
            3 => (0..rng.below(40))
                .map(|_| TEXT[rng.below(TEXT.len())])
                .collect(),
            _ => VALUES[rng.below(VALUES.len())].as_bytes().to_vec(),
        };
        (name, value)
    }

    /// Random header lists (binary bytes, empty and long values, table size
    /// changes) through Encoder and Decoder: the same fields come out, and
    /// the two dynamic tables stay the same size.
    #[test]
    fn random_round_trips() {
        for seed in 1..=40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut e = Encoder::new();
            let mut d = Decoder::new(4096, 1 << 20);
            for _ in 0..50 {
                if rng.below(8) == 0 {
                    let sizes = [0, 1, 40, 64, 100, 256, 511, 512, 4096];
                    for _ in 0..1 + rng.below(2) {
                        e.set_max_table_size(sizes[rng.below(sizes.len())]);
                    }
                }
                let fields: Fields = (0..rng.below(12)).map(|_| random_field(&mut rng)).collect();
                let mut out = Vec::new();
                e.encode(
                    fields.iter().map(|(n, v)| (n.as_slice(), v.as_slice())),
                    &mut out,
                );
                assert_eq!(decode_all(&mut d, &out), Ok(fields), "seed {seed}");
                assert_eq!(d.table_size(), e.table_size(), "seed {seed}");
            }
        }
    }

    /// `encode` appends: earlier bytes in `dst` are left alone.
    #[test]
    fn encode_appends() {
        let mut e = Encoder::new();
        let mut out = vec![1, 2, 3];
        e.encode([(&b":status"[..], &b"200"[..])], &mut out);
        assert_eq!(out, [1, 2, 3, 0x3f, 0xe1, 0x03, 0x88]);
    }
}
