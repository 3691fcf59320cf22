//! The HPACK encoder (placeholder, filled in next).
