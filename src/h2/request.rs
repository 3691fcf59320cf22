//! Request header validation (RFC 9113 §8.2, §8.3) into a [`RequestHead`].
//!
//! The HPACK decoder hands fields over one by one; [`RequestBuilder`] checks
//! each as it comes and keeps the first reason the request is malformed. A
//! malformed request is a stream error of type PROTOCOL_ERROR (§8.1.1).

use std::ops::Range;

/// A validated request: pseudo-headers plus regular fields, stored in one
/// buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestHead {
    buf: Vec<u8>,
    method: Range<usize>,
    scheme: Range<usize>,
    path: Range<usize>,
    authority: Option<Range<usize>>,
    /// (name, value) ranges of the regular fields, in order.
    fields: Vec<(Range<usize>, Range<usize>)>,
}

impl RequestHead {
    fn get(&self, r: &Range<usize>) -> &[u8] {
        self.buf.get(r.clone()).unwrap_or(&[])
    }

    /// `:method`.
    pub fn method(&self) -> &[u8] {
        self.get(&self.method)
    }

    /// `:path` (empty for CONNECT).
    pub fn path(&self) -> &[u8] {
        self.get(&self.path)
    }

    /// `:scheme` (empty for CONNECT).
    pub fn scheme(&self) -> &[u8] {
        self.get(&self.scheme)
    }

    /// `:authority`, if sent.
    pub fn authority(&self) -> Option<&[u8]> {
        self.authority.as_ref().map(|r| self.get(r))
    }

    /// The first value of the regular field `name` (lower-case).
    pub fn header(&self, name: &[u8]) -> Option<&[u8]> {
        self.fields().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// All regular fields in order.
    pub fn fields(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields.iter().map(|(n, v)| (self.get(n), self.get(v)))
    }
}

/// Which header block is being checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// The request HEADERS.
    Request,
    /// Trailers (a second HEADERS block).
    Trailers,
}

/// Collects and checks fields as the decoder yields them.
#[derive(Debug)]
pub struct RequestBuilder {
    kind: BlockKind,
    head: RequestHead,
    have: [bool; 4],
    regular_seen: bool,
    content_length: Option<u64>,
    /// The first reason the block is malformed, if any.
    pub error: Option<&'static str>,
}

const METHOD: usize = 0;
const SCHEME: usize = 1;
const PATH: usize = 2;
const AUTHORITY: usize = 3;

impl RequestBuilder {
    /// A builder for a block of `kind`.
    pub fn new(kind: BlockKind) -> RequestBuilder {
        let head = match kind {
            // Room for a typical gRPC request head (~150 bytes, ~5 regular
            // fields), so it is built with two allocations instead of a
            // dozen doubling steps.
            BlockKind::Request => RequestHead {
                buf: Vec::with_capacity(256),
                fields: Vec::with_capacity(8),
                ..RequestHead::default()
            },
            BlockKind::Trailers => RequestHead::default(),
        };
        RequestBuilder {
            kind,
            head,
            have: [false; 4],
            regular_seen: false,
            content_length: None,
            error: None,
        }
    }

    fn fail(&mut self, why: &'static str) {
        if self.error.is_none() {
            self.error = Some(why);
        }
    }

    fn push(&mut self, b: &[u8]) -> Range<usize> {
        let start = self.head.buf.len();
        self.head.buf.extend_from_slice(b);
        start..self.head.buf.len()
    }

    /// Checks and records one field.
    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        if self.error.is_some() {
            return; // keep decoding for HPACK sync, but stop storing
        }
        // §8.2.1: a field value MUST NOT contain NUL, LF or CR, nor start or end with
        // SP or HTAB; such a request is malformed.
        if crate::service::malformed_field_value(value) {
            return self.fail("invalid character in a field value");
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            // §8.3: "Pseudo-header fields MUST NOT appear in a trailer section."
            if self.kind == BlockKind::Trailers {
                return self.fail("pseudo-header in trailers");
            }
            // §8.3: "All pseudo-header fields MUST appear in a field block before all
            // regular field lines. Any request or response that contains a
            // pseudo-header field that appears in a field block after a regular field
            // line MUST be treated as malformed."
            if self.regular_seen {
                return self.fail("pseudo-header after a regular field");
            }
            let slot = match pseudo {
                b"method" => METHOD,
                b"scheme" => SCHEME,
                b"path" => PATH,
                b"authority" => AUTHORITY,
                // §8.3: "Endpoints MUST treat a request or response that contains
                // undefined or invalid pseudo-header fields as malformed." (:status is a
                // response pseudo-header, invalid in a request.)
                _ => return self.fail("unknown pseudo-header"),
            };
            // §8.3.1: "The same pseudo-header field name MUST NOT appear more than once
            // in a field block."
            if self.have[slot] {
                return self.fail("duplicate pseudo-header");
            }
            self.have[slot] = true;
            let r = self.push(value);
            match slot {
                METHOD => self.head.method = r,
                SCHEME => self.head.scheme = r,
                PATH => self.head.path = r,
                _ => self.head.authority = Some(r),
            }
            return;
        }
        self.regular_seen = true;
        // §8.2.1: "A field name MUST NOT contain characters in the ranges 0x00-0x20,
        // 0x41-0x5a, or 0x7f-0xff (all ranges inclusive)" — this includes uppercase
        // (§8.2: "field names MUST be converted to lowercase"); an empty name is invalid too.
        // "With the exception of pseudo-header fields ..., field names MUST NOT include a
        // colon (ASCII COLON, 0x3a)."
        if name.is_empty()
            || name
                .iter()
                .any(|&b| b <= 0x20 || b.is_ascii_uppercase() || b >= 0x7f || b == b':')
        {
            return self.fail("invalid field name");
        }
        // §8.2.2: "An endpoint MUST NOT generate an HTTP/2 message containing
        // connection-specific header fields ... any message containing
        // connection-specific header fields MUST be treated as malformed."
        if matches!(
            name,
            b"connection" | b"proxy-connection" | b"keep-alive" | b"transfer-encoding" | b"upgrade"
        ) {
            return self.fail("connection-specific header field");
        }
        // §8.2.2: "The only exception to this is the TE header field, which MAY be
        // present in an HTTP/2 request; when it is, it MUST NOT contain any value other
        // than 'trailers'."
        if name == b"te" && value != b"trailers" {
            return self.fail("te other than trailers");
        }
        if name == b"content-length" && self.kind == BlockKind::Request {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            match (n, self.content_length) {
                (Some(n), None) => self.content_length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return self.fail("invalid content-length"),
            }
        }
        let n = self.push(name);
        let v = self.push(value);
        self.head.fields.push((n, v));
    }

    /// Finishes the block: the validated request and its content-length, or why it is malformed.
    pub fn finish(mut self) -> Result<(RequestHead, Option<u64>), &'static str> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.kind == BlockKind::Request {
            let connect = self.have[METHOD] && self.head.method() == b"CONNECT";
            if connect {
                // §8.5: "The :scheme and :path pseudo-header fields MUST be omitted" and
                // ":authority ... MUST" be present for CONNECT.
                if self.have[SCHEME] || self.have[PATH] || !self.have[AUTHORITY] {
                    return Err("malformed CONNECT request");
                }
            } else {
                // §8.3.1: "All HTTP/2 requests MUST include exactly one valid value for
                // the :method, :scheme, and :path pseudo-header fields, unless they are
                // CONNECT requests."
                if !(self.have[METHOD] && self.have[SCHEME] && self.have[PATH]) {
                    return Err("missing :method, :scheme or :path");
                }
                // §8.3.1: ":path ... MUST NOT be empty".
                if self.head.path().is_empty() {
                    return Err("empty :path");
                }
            }
        }
        self.head.buf.shrink_to_fit();
        Ok((self.head, self.content_length))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(kind: BlockKind, fields: &[(&str, &str)]) -> Result<RequestHead, &'static str> {
        let mut b = RequestBuilder::new(kind);
        for (n, v) in fields {
            b.field(n.as_bytes(), v.as_bytes());
        }
        b.finish().map(|(h, _)| h)
    }

    const GOOD: &[(&str, &str)] = &[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/echo.Echo/Reply"),
        (":authority", "pi:50051"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ];

    #[test]
    fn good_request() {
        let h = build(BlockKind::Request, GOOD).unwrap();
        assert_eq!(h.method(), b"POST");
        assert_eq!(h.path(), b"/echo.Echo/Reply");
        assert_eq!(h.scheme(), b"http");
        assert_eq!(h.authority(), Some(&b"pi:50051"[..]));
        assert_eq!(h.header(b"content-type"), Some(&b"application/grpc"[..]));
        assert_eq!(h.header(b"missing"), None);
        assert_eq!(h.fields().count(), 2);
    }

    #[test]
    fn malformed_requests() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[(":method", "POST"), (":scheme", "http")],
                "missing :method, :scheme or :path",
            ),
            (
                &[(":method", "POST"), (":scheme", "http"), (":path", "")],
                "empty :path",
            ),
            (
                &[
                    (":method", "POST"),
                    ("a", "b"),
                    (":scheme", "http"),
                    (":path", "/"),
                ],
                "pseudo-header after a regular field",
            ),
            (
                &[
                    (":method", "POST"),
                    (":method", "GET"),
                    (":scheme", "http"),
                    (":path", "/"),
                ],
                "duplicate pseudo-header",
            ),
            (
                &[
                    (":method", "POST"),
                    (":status", "200"),
                    (":scheme", "http"),
                    (":path", "/"),
                ],
                "unknown pseudo-header",
            ),
            (
                &[
                    (":method", "POST"),
                    (":scheme", "http"),
                    (":path", "/"),
                    ("Upper", "x"),
                ],
                "invalid field name",
            ),
            (
                // §8.2.1: only a pseudo-header's leading colon is allowed in a name.
                &[
                    (":method", "POST"),
                    (":scheme", "http"),
                    (":path", "/"),
                    ("x:y", "z"),
                ],
                "invalid field name",
            ),
            (
                &[
                    (":method", "POST"),
                    (":scheme", "http"),
                    (":path", "/"),
                    ("trailing:", "z"),
                ],
                "invalid field name",
            ),
            (
                &[
                    (":method", "POST"),
                    (":scheme", "http"),
                    (":path", "/"),
                    ("connection", "close"),
                ],
                "connection-specific header field",
            ),
            (
                &[
                    (":method", "POST"),
                    (":scheme", "http"),
                    (":path", "/"),
                    ("te", "gzip"),
                ],
                "te other than trailers",
            ),
            (
                &[
                    (":method", "POST"),
                    (":scheme", "http"),
                    (":path", "/"),
                    ("x", "a\nb"),
                ],
                "invalid character in a field value",
            ),
            (
                &[
                    (":method", "POST"),
                    (":scheme", "http"),
                    (":path", "/"),
                    ("content-length", "x"),
                ],
                "invalid content-length",
            ),
            (
                &[
                    (":method", "CONNECT"),
                    (":scheme", "http"),
                    (":path", "/"),
                    (":authority", "a"),
                ],
                "malformed CONNECT request",
            ),
        ];
        for (fields, why) in cases {
            assert_eq!(build(BlockKind::Request, fields), Err(*why), "{fields:?}");
        }
        assert!(build(
            BlockKind::Request,
            &[(":method", "CONNECT"), (":authority", "a:1")]
        )
        .is_ok());
    }

    #[test]
    fn trailers() {
        assert!(build(BlockKind::Trailers, &[("grpc-status", "0")]).is_ok());
        assert_eq!(
            build(BlockKind::Trailers, &[(":path", "/")]),
            Err("pseudo-header in trailers")
        );
    }

    #[test]
    fn content_length() {
        let mut b = RequestBuilder::new(BlockKind::Request);
        for (n, v) in GOOD {
            b.field(n.as_bytes(), v.as_bytes());
        }
        b.field(b"content-length", b"12");
        assert_eq!(b.finish().map(|(_, cl)| cl), Ok(Some(12)));
    }
}
