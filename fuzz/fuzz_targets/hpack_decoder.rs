//! Fuzz target: the HPACK decoder (`lean_grpc::h2::hpack::Decoder`) on arbitrary
//! header blocks, plus an Encoder → Decoder round trip of what it decoded.
//!
//! Input layout (see `fuzz/gen-seeds`):
//! * byte 0: the SETTINGS_HEADER_TABLE_SIZE we advertise (bound for the peer's
//!   size updates), picked from a small table of interesting values;
//! * byte 1: the max header list size, also from a table;
//! * byte 2: the peer's SETTINGS_HEADER_TABLE_SIZE given to the round-trip encoder;
//! * then header blocks, each as a 2-byte big-endian length and that many bytes
//!   (a short last block takes what is left). All blocks go through one
//!   decoder, so the dynamic table carries over as on a connection.
//!
//! Checked: no panic; the dynamic table never exceeds the bound it may have;
//! the fields handed out never exceed the header list size limit; and a block
//! that decoded fine, re-encoded by one long-lived `Encoder`, decodes to the
//! same fields in the same order with a long-lived second `Decoder`.

#![no_main]

use lean_grpc::h2::hpack::{DecodeError, Decoder, Encoder};
use libfuzzer_sys::fuzz_target;

/// Protocol default table size (RFC 7541 §4.2 / RFC 9113 §6.5.2): where the table starts.
const DEFAULT_TABLE: usize = 4096;

const TABLE_SIZES: [usize; 8] = [0, 1, 32, 64, 256, 4096, 65_536, usize::MAX];
const LIST_SIZES: [usize; 8] = [0, 31, 32, 100, 1024, 8192, 16_384, usize::MAX];
const PEER_TABLE_SIZES: [usize; 8] = [0, 1, 33, 100, 255, 512, 4096, usize::MAX];

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

fn pick(table: &[usize; 8], b: u8) -> usize {
    table[usize::from(b) % table.len()]
}

fuzz_target!(|data: &[u8]| {
    let [t, l, p, rest @ ..] = data else {
        return;
    };
    let max_table = pick(&TABLE_SIZES, *t);
    let max_list = pick(&LIST_SIZES, *l);
    let mut decoder = Decoder::new(max_table, max_list);
    let mut encoder = Encoder::new();
    encoder.set_max_table_size(pick(&PEER_TABLE_SIZES, *p));
    // The round-trip decoder plays a peer that advertised the default table size.
    let mut peer = Decoder::new(DEFAULT_TABLE, usize::MAX);

    let mut input = rest;
    let mut broken = false;
    while !input.is_empty() {
        let block = match input {
            [hi, lo, tail @ ..] => {
                let n = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
                let (b, after) = tail.split_at(n);
                input = after;
                b
            }
            _ => std::mem::take(&mut input),
        };
        let mut fields: Fields = Vec::new();
        let mut list = 0usize;
        let result = decoder.decode(block, &mut |n, v| {
            list = list.saturating_add(n.len() + v.len() + 32);
            fields.push((n.to_vec(), v.to_vec()));
        });
        assert!(
            list <= max_list,
            "fields handed out ({list} bytes) exceed the header list limit {max_list}"
        );
        assert!(
            decoder.table_size() <= DEFAULT_TABLE.max(max_table),
            "dynamic table {} above its bound (advertised {max_table})",
            decoder.table_size()
        );
        match result {
            Ok(()) => {}
            Err(DecodeError::HeaderListTooLarge) => {
                assert!(!DecodeError::HeaderListTooLarge.is_compression_error());
                continue;
            }
            Err(e) => {
                assert!(e.is_compression_error());
                // The table is now out of step with the peer's: a connection
                // would end here. Keep feeding the rest anyway (it must not
                // panic), but round-trip no more.
                broken = true;
                continue;
            }
        }
        if broken {
            continue;
        }
        round_trip(&mut encoder, &mut peer, &fields);
    }
});

/// Encodes `fields` and checks that the peer decoder gets them back exactly.
fn round_trip(encoder: &mut Encoder, peer: &mut Decoder, fields: &Fields) {
    let mut block = Vec::new();
    encoder.encode(
        fields.iter().map(|(n, v)| (n.as_slice(), v.as_slice())),
        &mut block,
    );
    let mut got: Fields = Vec::new();
    let r = peer.decode(&block, &mut |n, v| got.push((n.to_vec(), v.to_vec())));
    assert_eq!(r, Ok(()), "our own encoding failed to decode: {block:02x?}");
    assert_eq!(
        &got, fields,
        "round trip changed the fields; block {block:02x?}"
    );
    assert_eq!(
        encoder.table_size(),
        peer.table_size(),
        "encoder and decoder dynamic tables out of step"
    );
}
