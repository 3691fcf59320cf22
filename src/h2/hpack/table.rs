//! The static table (RFC 7541 Appendix A) and the dynamic table (§4).
//!
//! Both live in one index space (§2.3.3): 1–61 are the static entries,
//! 62 and up the dynamic ones, newest first.

use std::collections::VecDeque;

use super::DecodeError;

/// RFC 7541 Appendix A, as printed. Only read at compile time: the binary
/// holds [`PACKED`], which needs no pointers (122 fat pointers would cost
/// about 2 KB of data plus 3 KB of load-time relocations).
const APPENDIX_A: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// Total bytes of the names and values of [`APPENDIX_A`].
const PACKED_LEN: usize = {
    let mut n = 0;
    let mut i = 0;
    while i < APPENDIX_A.len() {
        n += APPENDIX_A[i].0.len() + APPENDIX_A[i].1.len();
        i += 1;
    }
    n
};

/// The static table without pointers: every name and value back to back,
/// and per entry (offset, name length, value length).
struct Packed {
    bytes: [u8; PACKED_LEN],
    entries: [(u16, u8, u8); 61],
}

const fn pack() -> Packed {
    let mut p = Packed {
        bytes: [0; PACKED_LEN],
        entries: [(0, 0, 0); 61],
    };
    let mut at = 0;
    let mut i = 0;
    while i < APPENDIX_A.len() {
        let (name, value) = APPENDIX_A[i];
        p.entries[i] = (at as u16, name.len() as u8, value.len() as u8);
        let mut j = 0;
        while j < name.len() {
            p.bytes[at] = name[j];
            at += 1;
            j += 1;
        }
        let mut j = 0;
        while j < value.len() {
            p.bytes[at] = value[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    p
}

static PACKED: Packed = pack();

// Offsets fit the u16 in `Packed::entries` (names and values are far below 256).
const _: () = assert!(PACKED_LEN <= u16::MAX as usize);

/// Static entry `i` (0-based: HPACK index `i + 1`).
fn static_entry(i: usize) -> Option<(&'static [u8], &'static [u8])> {
    let &(at, name_len, value_len) = PACKED.entries.get(i)?;
    let at = usize::from(at);
    let mid = at + usize::from(name_len);
    let end = mid + usize::from(value_len);
    Some((PACKED.bytes.get(at..mid)?, PACKED.bytes.get(mid..end)?))
}

/// §4.1: "The size of an entry is the sum of its name's length in octets
/// ..., its value's length in octets, and 32."
pub(super) fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len().saturating_add(value.len()).saturating_add(32)
}

/// One dynamic entry: name and value in a single allocation.
#[derive(Debug)]
pub(super) struct Entry {
    /// `name ++ value`.
    bytes: Box<[u8]>,
    /// Where the name ends in `bytes`.
    name_len: usize,
}

impl Entry {
    /// Copies `name` and `value` into a new entry. Building the entry before
    /// inserting it matters: the name may come from an entry the insertion
    /// evicts (§4.4).
    pub(super) fn new(name: &[u8], value: &[u8]) -> Entry {
        let mut bytes = Vec::with_capacity(name.len().saturating_add(value.len()));
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(value);
        Entry {
            bytes: bytes.into_boxed_slice(),
            name_len: name.len(),
        }
    }

    fn name(&self) -> &[u8] {
        self.bytes.get(..self.name_len).unwrap_or_default()
    }

    fn value(&self) -> &[u8] {
        self.bytes.get(self.name_len..).unwrap_or_default()
    }
}

/// The dynamic table: a FIFO of entries with size accounting (§4.1) and
/// eviction (§4.4). The encoder keeps one that mirrors the peer decoder's,
/// the decoder one that mirrors the peer encoder's.
#[derive(Debug)]
pub(super) struct DynamicTable {
    /// Newest entry at the front (dynamic index 0 = HPACK index 62).
    entries: VecDeque<Entry>,
    /// Sum of [`entry_size`] over `entries`.
    size: usize,
    /// Current maximum size, as last set by a table size update.
    max_size: usize,
}

impl DynamicTable {
    /// An empty table that may grow to `max_size` bytes.
    pub(super) fn new(max_size: usize) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// Current size in bytes (§4.1).
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// Current maximum size in bytes.
    pub(super) fn max_size(&self) -> usize {
        self.max_size
    }

    /// Number of entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entry `i` (0 = newest).
    pub(super) fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.entries.get(i).map(|e| (e.name(), e.value()))
    }

    /// §4.3: a new maximum size evicts entries until the table fits it.
    pub(super) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// Adds `(name, value)` at the front (see [`DynamicTable::push`]).
    pub(super) fn insert(&mut self, name: &[u8], value: &[u8]) {
        self.push(Entry::new(name, value));
    }

    /// §4.4: adds a new entry at the front, first evicting old entries until
    /// it fits. An entry larger than the maximum size empties the table and
    /// is not added ("not an error").
    pub(super) fn push(&mut self, entry: Entry) {
        let size = entry_size(entry.name(), entry.value());
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.entries.push_front(entry);
        self.size += size;
    }

    /// Evicts the oldest entries until the size is at most `target`.
    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            match self.entries.pop_back() {
                Some(e) => self.size -= entry_size(e.name(), e.value()),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// Dynamic indexes (0 = newest) of the first entry equal to
    /// `(name, value)` and of an entry with that name (the same one when
    /// there is an exact match, else the newest).
    pub(super) fn find(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let mut name_match = None;
        for (i, e) in self.entries.iter().enumerate() {
            if e.name() == name {
                if e.value() == value {
                    return (Some(i), Some(i));
                }
                name_match = name_match.or(Some(i));
            }
        }
        (None, name_match)
    }
}

/// Looks up an HPACK index (§2.3.3) in the static then the dynamic table.
/// "Indices strictly greater than the sum of the lengths of both tables MUST
/// be treated as a decoding error"; so must index 0 (§6.1).
pub(super) fn lookup(dynamic: &DynamicTable, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
    match index {
        0 => Err(DecodeError::InvalidIndex),
        1..=61 => static_entry(index - 1).ok_or(DecodeError::InvalidIndex),
        _ => dynamic.get(index - 62).ok_or(DecodeError::InvalidIndex),
    }
}

/// Static indexes (1-based) of the entry equal to `(name, value)` and of an
/// entry with that name (the same one when there is an exact match).
pub(super) fn find_static(name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
    let mut name_match = None;
    for (i, &(_, name_len, _)) in PACKED.entries.iter().enumerate() {
        // Lengths first: most entries are ruled out without touching bytes.
        let entry = if usize::from(name_len) == name.len() {
            static_entry(i)
        } else {
            None
        };
        match entry {
            Some((n, v)) if n == name => {
                if v == value {
                    return (Some(i + 1), Some(i + 1));
                }
                name_match = name_match.or(Some(i + 1));
            }
            // Entries with the same name are adjacent.
            _ if name_match.is_some() => break,
            _ => {}
        }
    }
    (None, name_match)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_static_table_matches_appendix_a() {
        for (i, &entry) in APPENDIX_A.iter().enumerate() {
            assert_eq!(static_entry(i), Some(entry), "{i}");
        }
        assert_eq!(static_entry(61), None);
    }

    #[test]
    fn static_table_spot_checks() {
        let t = DynamicTable::new(0);
        assert_eq!(lookup(&t, 1), Ok((&b":authority"[..], &b""[..])));
        assert_eq!(lookup(&t, 8), Ok((&b":status"[..], &b"200"[..])));
        assert_eq!(lookup(&t, 31), Ok((&b"content-type"[..], &b""[..])));
        assert_eq!(lookup(&t, 61), Ok((&b"www-authenticate"[..], &b""[..])));
        assert_eq!(lookup(&t, 0), Err(DecodeError::InvalidIndex));
        assert_eq!(lookup(&t, 62), Err(DecodeError::InvalidIndex));
    }

    #[test]
    fn find_static_exact_and_name() {
        assert_eq!(find_static(b":status", b"200"), (Some(8), Some(8)));
        assert_eq!(find_static(b":status", b"500"), (Some(14), Some(14)));
        assert_eq!(find_static(b":status", b"302"), (None, Some(8)));
        assert_eq!(
            find_static(b"content-type", b"application/grpc"),
            (None, Some(31))
        );
        assert_eq!(find_static(b"grpc-status", b"0"), (None, None));
    }

    #[test]
    fn insert_evicts_oldest_and_accounts_size() {
        let mut t = DynamicTable::new(100);
        t.insert(b"a", b"1"); // 34
        t.insert(b"b", b"2"); // 34, total 68
        assert_eq!((t.len(), t.size()), (2, 68));
        t.insert(b"c", b"3"); // 102 > 100: "a" goes
        assert_eq!((t.len(), t.size()), (2, 68));
        assert_eq!(t.get(0), Some((&b"c"[..], &b"3"[..])));
        assert_eq!(t.get(1), Some((&b"b"[..], &b"2"[..])));
        assert_eq!(lookup(&t, 62), Ok((&b"c"[..], &b"3"[..])));
        assert_eq!(lookup(&t, 63), Ok((&b"b"[..], &b"2"[..])));
        assert_eq!(lookup(&t, 64), Err(DecodeError::InvalidIndex));
        assert_eq!(t.find(b"b", b"2"), (Some(1), Some(1)));
        assert_eq!(t.find(b"b", b"9"), (None, Some(1)));
    }

    #[test]
    fn oversized_entry_empties_the_table() {
        let mut t = DynamicTable::new(64);
        t.insert(b"a", b"1");
        t.insert(&[b'x'; 40], b"");
        assert_eq!((t.len(), t.size()), (0, 0));
    }

    #[test]
    fn lowering_the_maximum_evicts() {
        let mut t = DynamicTable::new(4096);
        t.insert(b"a", b"1");
        t.insert(b"b", b"2");
        t.set_max_size(40);
        assert_eq!((t.len(), t.size(), t.max_size()), (1, 34, 40));
        assert_eq!(t.get(0), Some((&b"b"[..], &b"2"[..])));
        t.set_max_size(0);
        assert_eq!((t.len(), t.size()), (0, 0));
    }
}
