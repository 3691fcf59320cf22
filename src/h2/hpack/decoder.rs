//! The HPACK decoder: header block → fields (RFC 7541 §3, §6).

use super::table::{self, DynamicTable, Entry};
use super::{integer, string, DecodeError};

/// SETTINGS_HEADER_TABLE_SIZE before any SETTINGS (RFC 9113 §6.5.2): the
/// table size the peer's encoder starts with.
const DEFAULT_TABLE_SIZE: usize = 4096;

/// Scratch buffers above this capacity are freed after a block, so one large
/// Huffman string does not stay charged to an idle connection.
const KEEP_SCRATCH: usize = 1024;

/// Decodes the header blocks of one connection, in order.
///
/// Holds the dynamic table the peer's encoder fills, bounded by the
/// SETTINGS_HEADER_TABLE_SIZE we advertise, plus two scratch buffers for
/// Huffman strings that are reused from block to block.
#[derive(Debug)]
pub struct Decoder {
    /// The peer encoder's dynamic table, as its updates and insertions tell.
    table: DynamicTable,
    /// The SETTINGS_HEADER_TABLE_SIZE we advertise: no size update may exceed it.
    max_table_size: usize,
    /// RFC 9113 §6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE we enforce.
    max_header_list_size: usize,
    /// Decoded Huffman names.
    name_buf: Vec<u8>,
    /// Decoded Huffman values.
    value_buf: Vec<u8>,
}

impl Decoder {
    /// A decoder for a connection on which we advertise
    /// SETTINGS_HEADER_TABLE_SIZE = `max_table_size` (the bound for the
    /// peer's table size updates) and accept header lists up to
    /// `max_header_list_size` (RFC 9113 size: name + value + 32 per field).
    ///
    /// The table itself starts at the protocol default of 4096 bytes, as
    /// the peer's encoder does: a peer may send its first blocks before it
    /// has seen our SETTINGS, and only later shrink the table with a size
    /// update. A decoder table smaller than the encoder's would lose entries
    /// the peer still refers to.
    pub fn new(max_table_size: usize, max_header_list_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            max_table_size,
            max_header_list_size,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
        }
    }

    /// Current size in bytes of the dynamic table (RFC 7541 §4.1).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Decodes one complete header block (HEADERS + CONTINUATIONs joined),
    /// calling `f(name, value)` per field in order.
    ///
    /// Once the fields pass the header list size limit, `f` is no longer
    /// called but the block is still decoded to the end, so the dynamic
    /// table stays in step; then [`DecodeError::HeaderListTooLarge`] is
    /// returned. Any other error leaves the table unusable: the connection
    /// must end with COMPRESSION_ERROR.
    pub fn decode(
        &mut self,
        block: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let result = self.decode_block(block, f);
        for buf in [&mut self.name_buf, &mut self.value_buf] {
            if buf.capacity() > KEEP_SCRATCH {
                *buf = Vec::new();
            }
        }
        result
    }

    fn decode_block(
        &mut self,
        block: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]),
    ) -> Result<(), DecodeError> {
        let Decoder {
            table,
            max_table_size,
            max_header_list_size,
            name_buf,
            value_buf,
        } = self;
        let mut pos = 0;
        let mut list_size = 0usize;
        let mut fields_seen = false;
        let mut emit = |name: &[u8], value: &[u8]| {
            // RFC 9113 §6.5.2: "the uncompressed size of header fields,
            // including the length of the name and value in octets plus an
            // overhead of 32 octets for each header field".
            list_size = list_size.saturating_add(table::entry_size(name, value));
            if list_size <= *max_header_list_size {
                f(name, value);
            }
        };
        while let Some(&first) = block.get(pos) {
            if first & 0x80 != 0 {
                // §6.1 Indexed Header Field: 1xxxxxxx, 7-bit index.
                let index = integer::decode(block, &mut pos, 7)?;
                let (name, value) = table::lookup(table, index)?;
                emit(name, value);
            } else if first & 0x20 != 0 && first & 0x40 == 0 {
                // §6.3 Dynamic Table Size Update: 001xxxxx, 5-bit size.
                // §4.2: "This dynamic table size update MUST occur at the
                // beginning of the first header block following the change".
                if fields_seen {
                    return Err(DecodeError::TableSizeUpdateNotAtStart);
                }
                let size = integer::decode(block, &mut pos, 5)?;
                // §6.3: "The new maximum size MUST be lower than or equal to
                // the limit determined by the protocol using HPACK."
                if size > *max_table_size {
                    return Err(DecodeError::TableSizeUpdateTooLarge);
                }
                table.set_max_size(size);
                continue;
            } else {
                // §6.2 literals: 01xxxxxx with incremental indexing (6-bit
                // name index), 0000xxxx without indexing and 0001xxxx never
                // indexed (4-bit name index). Index 0: the name follows.
                let indexing = first & 0x40 != 0;
                let prefix = if indexing { 6 } else { 4 };
                let name_index = integer::decode(block, &mut pos, prefix)?;
                let name = if name_index == 0 {
                    string::decode(block, &mut pos, name_buf)?
                } else {
                    table::lookup(table, name_index)?.0
                };
                let value = string::decode(block, &mut pos, value_buf)?;
                emit(name, value);
                if indexing {
                    // §6.2.1: "appended to the decoded header list and ...
                    // inserted as a new entry into the dynamic table". The
                    // entry is built (copied) first: its name may be an
                    // entry the insertion evicts.
                    let entry = Entry::new(name, value);
                    table.push(entry);
                }
            }
            fields_seen = true;
        }
        if list_size > *max_header_list_size {
            return Err(DecodeError::HeaderListTooLarge);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Parses the RFC's hex dumps ("8286 8441 ...").
    pub(in super::super) fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    pub(in super::super) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

    pub(in super::super) fn decode_all(
        d: &mut Decoder,
        block: &[u8],
    ) -> Result<Fields, DecodeError> {
        let mut out = Vec::new();
        d.decode(block, &mut |n, v| out.push((n.to_vec(), v.to_vec())))?;
        Ok(out)
    }

    fn pairs(list: &[(&str, &str)]) -> Fields {
        list.iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    fn table_of(d: &Decoder) -> Fields {
        (0..d.table.len())
            .filter_map(|i| d.table.get(i))
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect()
    }

    /// C.2.1 .. C.2.4: one representation each, on a fresh decoder.
    #[test]
    fn c_2_field_representations() {
        let cases: [(&str, (&str, &str), usize); 4] = [
            (
                "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
                ("custom-key", "custom-header"),
                55,
            ),
            (
                "040c 2f73 616d 706c 652f 7061 7468",
                (":path", "/sample/path"),
                0,
            ),
            (
                "1008 7061 7373 776f 7264 0673 6563 7265 74",
                ("password", "secret"),
                0,
            ),
            ("82", (":method", "GET"), 0),
        ];
        for (block, field, size) in cases {
            let mut d = Decoder::new(4096, 16384);
            assert_eq!(
                decode_all(&mut d, &hex(block)),
                Ok(pairs(&[field])),
                "{block}"
            );
            assert_eq!(d.table_size(), size, "{block}");
        }
    }

    fn request_lists() -> [Fields; 3] {
        let one = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ];
        let mut two = one.to_vec();
        two.push(("cache-control", "no-cache"));
        let three = [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/index.html"),
            (":authority", "www.example.com"),
            ("custom-key", "custom-value"),
        ];
        [pairs(&one), pairs(&two), pairs(&three)]
    }

    fn request_tables() -> [(Fields, usize); 3] {
        let auth = (":authority", "www.example.com");
        let cc = ("cache-control", "no-cache");
        let custom = ("custom-key", "custom-value");
        [
            (pairs(&[auth]), 57),
            (pairs(&[cc, auth]), 110),
            (pairs(&[custom, cc, auth]), 164),
        ]
    }

    fn run_chain(
        blocks: [&str; 3],
        table_size: usize,
        lists: [Fields; 3],
        tables: [(Fields, usize); 3],
    ) {
        let mut d = Decoder::new(table_size, 16384);
        // The examples assume both sides already use this table size.
        d.table.set_max_size(table_size);
        for ((block, list), (entries, size)) in blocks.iter().zip(lists).zip(tables) {
            assert_eq!(decode_all(&mut d, &hex(block)), Ok(list), "{block}");
            assert_eq!(table_of(&d), entries, "{block}");
            assert_eq!(d.table_size(), size, "{block}");
        }
    }

    /// C.3: three requests without Huffman on one decoder.
    #[test]
    fn c_3_requests_without_huffman() {
        run_chain(
            [
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "8286 84be 5808 6e6f 2d63 6163 6865",
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            ],
            4096,
            request_lists(),
            request_tables(),
        );
    }

    /// C.4: the same requests with Huffman-coded strings.
    #[test]
    fn c_4_requests_with_huffman() {
        run_chain(
            [
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                "8286 84be 5886 a8eb 1064 9cbf",
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ],
            4096,
            request_lists(),
            request_tables(),
        );
    }

    const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
    const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
    const URL: &str = "https://www.example.com";
    const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";

    fn response_lists() -> [Fields; 3] {
        [
            pairs(&[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", DATE1),
                ("location", URL),
            ]),
            pairs(&[
                (":status", "307"),
                ("cache-control", "private"),
                ("date", DATE1),
                ("location", URL),
            ]),
            pairs(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", DATE2),
                ("location", URL),
                ("content-encoding", "gzip"),
                ("set-cookie", COOKIE),
            ]),
        ]
    }

    fn response_tables() -> [(Fields, usize); 3] {
        [
            (
                pairs(&[
                    ("location", URL),
                    ("date", DATE1),
                    ("cache-control", "private"),
                    (":status", "302"),
                ]),
                222,
            ),
            (
                pairs(&[
                    (":status", "307"),
                    ("location", URL),
                    ("date", DATE1),
                    ("cache-control", "private"),
                ]),
                222,
            ),
            (
                pairs(&[
                    ("set-cookie", COOKIE),
                    ("content-encoding", "gzip"),
                    ("date", DATE2),
                ]),
                215,
            ),
        ]
    }

    /// C.5: three responses without Huffman, 256-byte table: evictions.
    #[test]
    fn c_5_responses_without_huffman() {
        run_chain(
            [
                "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a \
                 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "4803 3330 37c1 c0bf",
                "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 \
                 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 \
                 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
            ],
            256,
            response_lists(),
            response_tables(),
        );
    }

    /// C.6: the same responses with Huffman-coded strings.
    #[test]
    fn c_6_responses_with_huffman() {
        run_chain(
            [
                "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e \
                 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
                "4883 640e ffc1 c0bf",
                "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 \
                 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed \
                 4ee5 b106 3d50 07",
            ],
            256,
            response_lists(),
            response_tables(),
        );
    }

    fn decode_err(block: &[u8]) -> Result<Fields, DecodeError> {
        decode_all(&mut Decoder::new(4096, 16384), block)
    }

    #[test]
    fn index_zero_is_invalid() {
        assert_eq!(decode_err(&[0x80]), Err(DecodeError::InvalidIndex));
    }

    #[test]
    fn index_past_the_tables_is_invalid() {
        // 62 with an empty dynamic table.
        assert_eq!(decode_err(&[0xbe]), Err(DecodeError::InvalidIndex));
        // A literal whose name index is past the tables.
        assert_eq!(
            decode_err(&[0x7e, 0x01, b'a']),
            Err(DecodeError::InvalidIndex)
        );
        assert_eq!(
            decode_err(&[0x0f, 0x2f, 0x01, b'a']),
            Err(DecodeError::InvalidIndex)
        );
        // One past the last dynamic entry.
        let mut d = Decoder::new(4096, 16384);
        assert!(decode_all(
            &mut d,
            &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")
        )
        .is_ok());
        assert_eq!(decode_all(&mut d, &[0xbe]).map(|f| f.len()), Ok(1));
        assert_eq!(decode_all(&mut d, &[0xbf]), Err(DecodeError::InvalidIndex));
    }

    #[test]
    fn integer_overflow_is_an_error() {
        assert_eq!(
            decode_err(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(DecodeError::IntegerOverflow)
        );
        // In a string length, too.
        assert_eq!(
            decode_err(&[0x00, 0x7f, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            Err(DecodeError::IntegerOverflow)
        );
    }

    #[test]
    fn truncated_blocks_are_errors() {
        assert_eq!(decode_err(&[0xff]), Err(DecodeError::Truncated));
        assert_eq!(decode_err(&[0x40]), Err(DecodeError::Truncated));
        assert_eq!(decode_err(&[0x41]), Err(DecodeError::Truncated));
        assert_eq!(decode_err(&[0x3f]), Err(DecodeError::Truncated));
    }

    #[test]
    fn string_longer_than_the_block_is_an_error() {
        assert_eq!(
            decode_err(&hex("400a 6375")),
            Err(DecodeError::StringTooLong)
        );
        assert_eq!(
            decode_err(&hex("4105 6162")),
            Err(DecodeError::StringTooLong)
        );
    }

    #[test]
    fn bad_huffman_in_a_block_is_an_error() {
        // Name "a" with 8 bits of padding; then with 000 padding; then EOS.
        assert_eq!(
            decode_err(&hex("0082 1fff 00")),
            Err(DecodeError::HuffmanPadding)
        );
        assert_eq!(
            decode_err(&hex("0081 18 00")),
            Err(DecodeError::HuffmanPadding)
        );
        assert_eq!(
            decode_err(&hex("0084 ffff ffff 00")),
            Err(DecodeError::HuffmanEos)
        );
    }

    #[test]
    fn size_update_above_the_advertised_size_is_an_error() {
        // 4097 with a 5-bit prefix: 31 + 0x62 + (0x1f << 7).
        assert_eq!(
            decode_err(&hex("3fe2 1f 82")),
            Err(DecodeError::TableSizeUpdateTooLarge)
        );
        let mut d = Decoder::new(100, 16384);
        assert_eq!(
            decode_all(&mut d, &hex("3f46 82")),
            Err(DecodeError::TableSizeUpdateTooLarge)
        );
    }

    #[test]
    fn size_updates_are_allowed_only_at_the_start() {
        assert_eq!(
            decode_err(&hex("8220")),
            Err(DecodeError::TableSizeUpdateNotAtStart)
        );
        // Two at the start (the minimum, then the final size) are fine.
        let mut d = Decoder::new(4096, 16384);
        let got = decode_all(&mut d, &hex("20 3fe1 1f 82"));
        assert_eq!(got, Ok(pairs(&[(":method", "GET")])));
        assert_eq!(d.table.max_size(), 4096);
    }

    #[test]
    fn size_update_evicts_and_zero_disables() {
        let mut d = Decoder::new(4096, 16384);
        assert!(decode_all(
            &mut d,
            &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d")
        )
        .is_ok());
        assert_eq!(d.table_size(), 57);
        assert_eq!(
            decode_all(&mut d, &hex("20 82")),
            Ok(pairs(&[(":method", "GET")]))
        );
        assert_eq!(d.table_size(), 0);
        // With a zero-size table an incremental literal is not stored.
        assert!(decode_all(&mut d, &hex("4103 6162 63")).is_ok());
        assert_eq!(d.table_size(), 0);
        assert_eq!(decode_all(&mut d, &[0xbe]), Err(DecodeError::InvalidIndex));
    }

    #[test]
    fn header_list_too_large_keeps_the_table_in_step() {
        // custom-key: custom-header is 55 bytes; the limit is 50.
        let mut d = Decoder::new(4096, 50);
        let mut calls = 0;
        let block = hex("82 400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572 84");
        let r = d.decode(&block, &mut |_, _| calls += 1);
        assert_eq!(r, Err(DecodeError::HeaderListTooLarge));
        assert!(!r.unwrap_err().is_compression_error());
        // Only ":method: GET" (42) fit; the rest was decoded but not passed on.
        assert_eq!(calls, 1);
        // The insertion happened, so the next block can refer to it.
        assert_eq!(d.table_size(), 55);
        let mut d2 = Decoder::new(4096, 100);
        d2.table = std::mem::replace(&mut d.table, DynamicTable::new(0));
        assert_eq!(
            decode_all(&mut d2, &[0xbe]),
            Ok(pairs(&[("custom-key", "custom-header")]))
        );
    }

    #[test]
    fn incremental_literal_may_evict_its_own_name() {
        // Size update to 60 (31 + 29), then "custom-key: custom-header" (55).
        // A new entry named by index 62 evicts that entry while inserting.
        let mut d = Decoder::new(60, 16384);
        assert!(decode_all(
            &mut d,
            &hex("3f1d 400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572")
        )
        .is_ok());
        assert_eq!(
            decode_all(&mut d, &hex("7e 01 78")),
            Ok(pairs(&[("custom-key", "x")]))
        );
        assert_eq!(table_of(&d), pairs(&[("custom-key", "x")]));
        assert_eq!(d.table_size(), 43);
    }

    /// A peer that has not seen our SETTINGS yet encodes with the default
    /// 4096-byte table; a smaller advertised size bounds its later updates.
    #[test]
    fn table_starts_at_the_protocol_default() {
        let mut d = Decoder::new(100, 16384);
        let long = "x".repeat(200);
        let mut block = hex("40 01 61 7f 49"); // a: 200 x's (127 + 73), indexed
        block.extend_from_slice(long.as_bytes());
        assert_eq!(decode_all(&mut d, &block), Ok(pairs(&[("a", &long)])));
        assert_eq!(d.table_size(), 233);
        assert_eq!(decode_all(&mut d, &[0xbe]), Ok(pairs(&[("a", &long)])));
        // Then the peer applies our SETTINGS: an update to 100 empties the table.
        assert_eq!(
            decode_all(&mut d, &hex("3f45 82")),
            Ok(pairs(&[(":method", "GET")]))
        );
        assert_eq!(d.table_size(), 0);
        assert_eq!(
            decode_all(&mut d, &hex("3f46")),
            Err(DecodeError::TableSizeUpdateTooLarge)
        );
    }

    #[test]
    fn large_scratch_buffers_are_released() {
        let mut d = Decoder::new(4096, 1 << 20);
        let mut e = Vec::new();
        super::super::huffman::encode("a".repeat(4000).as_bytes(), &mut e);
        let mut block = vec![0x00, 0x01, b'n'];
        super::super::integer::encode(e.len(), 7, 0x80, &mut block);
        block.extend_from_slice(&e);
        let got = decode_all(&mut d, &block);
        assert_eq!(got.map(|f| f[0].1.len()), Ok(4000));
        assert_eq!(d.value_buf.capacity(), 0);
        // Small strings keep their buffer for the next block.
        assert!(decode_all(&mut d, &hex("0001 6e82 1fff")).is_err());
        assert!(decode_all(&mut d, &hex("0001 6e81 1f")).is_ok());
        assert!(d.value_buf.capacity() > 0);
    }

    /// Random and mutated blocks never panic (errors are fine).
    #[test]
    fn arbitrary_input_never_panics() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let seed =
            hex("88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab");
        let mut ok = 0;
        for _ in 0..20_000 {
            let mut d = Decoder::new(256, 1024);
            let block: Vec<u8> = if next() % 2 == 0 {
                (0..next() % 40).map(|_| next() as u8).collect()
            } else {
                let mut b = seed.clone();
                for _ in 0..1 + next() % 3 {
                    let i = (next() as usize) % b.len();
                    b[i] = next() as u8;
                }
                b.truncate(1 + (next() as usize) % seed.len());
                b
            };
            if d.decode(&block, &mut |_, _| {}).is_ok() {
                ok += 1;
            }
        }
        // Some random blocks are valid (e.g. a run of static indexes).
        assert!(ok > 0);
    }
}
