//! `grpc-timeout` parsing.
//!
//! Spec (PROTOCOL-HTTP2): `Timeout → "grpc-timeout" TimeoutValue TimeoutUnit`,
//! `TimeoutValue → {positive integer as ASCII string of at most 8 digits}`,
//! `TimeoutUnit → Hour / Minute / Second / Millisecond / Microsecond /
//! Nanosecond` spelled `H M S m u n`.
//!
//! An invalid value is reported as [`InvalidTimeout`]; the session then
//! ignores the header and runs the call without a deadline, as tonic 0.14
//! does (its `GrpcTimeout` layer logs the parse error and uses no timeout).

use std::time::Duration;

/// The `grpc-timeout` value did not follow the spec's grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidTimeout;

/// Parses a `grpc-timeout` header value into a duration.
pub fn parse(value: &[u8]) -> Result<Duration, InvalidTimeout> {
    let (unit, digits) = value.split_last().ok_or(InvalidTimeout)?;
    // At most 8 digits: also keeps the arithmetic below far from overflow
    // (99_999_999 hours fits a u64 of seconds easily).
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(InvalidTimeout);
    }
    let n = digits
        .iter()
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Ok(match unit {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return Err(InvalidTimeout),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit() {
        assert_eq!(parse(b"2H"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse(b"3M"), Ok(Duration::from_secs(180)));
        assert_eq!(parse(b"10S"), Ok(Duration::from_secs(10)));
        assert_eq!(parse(b"250m"), Ok(Duration::from_millis(250)));
        assert_eq!(parse(b"7u"), Ok(Duration::from_micros(7)));
        assert_eq!(parse(b"99999999n"), Ok(Duration::from_nanos(99_999_999)));
        assert_eq!(parse(b"0S"), Ok(Duration::ZERO));
    }

    #[test]
    fn largest_value_does_not_overflow() {
        assert_eq!(
            parse(b"99999999H"),
            Ok(Duration::from_secs(99_999_999 * 3600))
        );
    }

    #[test]
    fn rejects_bad_grammar() {
        for bad in [
            &b""[..],
            b"S",
            b"5",
            b"123456789S",
            b"5s",
            b"5x",
            b"-5S",
            b"+5S",
            b" 5S",
            b"5 S",
            b"1.5S",
        ] {
            assert_eq!(
                parse(bad),
                Err(InvalidTimeout),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
