//! Fair connection slots, decided the same way by both flavours.
//!
//! At `--max-connections`, a new connection does not simply bounce: it takes
//! the slot of the longest-idle connection that has no open call (which is
//! sent GOAWAY(NO_ERROR) and closed gracefully), so idle connections cannot
//! lock busy clients out. It is refused only when every slot has an open
//! call. The optional `--max-connections-per-ip` cap applies the same rule
//! among the connections of one client address.
//!
//! Refusals are logged as an aggregate ([`RefusalLog`]), never one line per
//! connection: a connection flood must not fill a board's SD card.
//!
//! No sockets and no clock reads: the drivers pass what they know of each
//! connection and the current time.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// What the slot decision needs to know about one open connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Occupant {
    /// The client's address.
    pub ip: IpAddr,
    /// Since when it has had no open call; `None` while a call is open.
    pub idle_since: Option<Instant>,
    /// Already asked to leave (evicted or closing): it no longer holds a slot.
    pub leaving: bool,
}

/// Why a connection was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every one of `--max-connections` slots has an open call.
    Full,
    /// Every connection of this client address has an open call, and there
    /// are `--max-connections-per-ip` of them.
    PerIp,
}

impl Refusal {
    /// The option that caused it, for the log.
    pub fn option(self) -> &'static str {
        match self {
            Refusal::Full => "max-connections",
            Refusal::PerIp => "max-connections-per-ip",
        }
    }
}

/// What to do with a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission<K> {
    /// Serve it; a slot is free.
    Admit,
    /// Serve it in the slot of the connection `K`, which must be sent
    /// GOAWAY(NO_ERROR) and closed gracefully (it has no open call).
    Evict(K),
    /// Refuse it.
    Refuse(Refusal),
}

/// Decides what to do with a new connection from `ip`, given the open ones.
pub fn admit<K: Copy>(
    occupants: impl IntoIterator<Item = (K, Occupant)>,
    ip: IpAddr,
    max: usize,
    max_per_ip: Option<usize>,
) -> Admission<K> {
    let mut total = 0;
    let mut same_ip = 0;
    // Longest idle overall and from this address: (key, idle since).
    let mut idlest: Option<(K, Instant)> = None;
    let mut idlest_same: Option<(K, Instant)> = None;
    for (key, o) in occupants {
        if o.leaving {
            continue;
        }
        total += 1;
        let mine = o.ip == ip;
        same_ip += usize::from(mine);
        if let Some(since) = o.idle_since {
            if idlest.is_none_or(|(_, t)| since < t) {
                idlest = Some((key, since));
            }
            if mine && idlest_same.is_none_or(|(_, t)| since < t) {
                idlest_same = Some((key, since));
            }
        }
    }
    if max_per_ip.is_some_and(|cap| same_ip >= cap) {
        return match idlest_same {
            Some((key, _)) => Admission::Evict(key),
            None => Admission::Refuse(Refusal::PerIp),
        };
    }
    if total >= max {
        return match idlest {
            Some((key, _)) => Admission::Evict(key),
            None => Admission::Refuse(Refusal::Full),
        };
    }
    Admission::Admit
}

/// How often refusals are summed up in one log line.
pub const REFUSAL_LOG_WINDOW: Duration = Duration::from_secs(10);

/// Aggregates refused connections into one warn line per
/// [`REFUSAL_LOG_WINDOW`]: the first refusal after a quiet window is logged
/// at once (with the peer), the rest are counted and summed up when the
/// window ends ([`RefusalLog::due`], then [`RefusalLog::flush`]).
#[derive(Debug, Default)]
pub struct RefusalLog {
    /// End of the current window; `None` when quiet.
    until: Option<Instant>,
    /// Refusals counted in the current window, by reason.
    full: u64,
    per_ip: u64,
}

impl RefusalLog {
    /// Records one refusal; returns the line to log now, if any.
    pub fn refused(&mut self, now: Instant, peer: &str, why: Refusal) -> Option<String> {
        if self.until.is_none() {
            self.until = Some(now + REFUSAL_LOG_WINDOW);
            return Some(format!(
                "{peer}: connection refused: every slot has an open call ({}); \
                 further refusals are summed up every {} s",
                why.option(),
                REFUSAL_LOG_WINDOW.as_secs()
            ));
        }
        match why {
            Refusal::Full => self.full += 1,
            Refusal::PerIp => self.per_ip += 1,
        }
        None
    }

    /// When [`RefusalLog::flush`] must run next, if a window is open.
    pub fn due(&self) -> Option<Instant> {
        self.until
    }

    /// Ends the window if it is over: the summary line, if anything was
    /// counted (then a new window starts), else the log goes quiet.
    pub fn flush(&mut self, now: Instant) -> Option<String> {
        if self.until.is_none_or(|until| now < until) {
            return None;
        }
        let total = self.full + self.per_ip;
        if total == 0 {
            self.until = None;
            return None;
        }
        let mut reasons = Vec::new();
        if self.full > 0 {
            reasons.push(format!("{} max-connections", group(self.full)));
        }
        if self.per_ip > 0 {
            reasons.push(format!("{} max-connections-per-ip", group(self.per_ip)));
        }
        self.full = 0;
        self.per_ip = 0;
        self.until = Some(now + REFUSAL_LOG_WINDOW);
        Some(format!(
            "refused {} connections in the last {} s ({}: every slot had an open call)",
            group(total),
            REFUSAL_LOG_WINDOW.as_secs(),
            reasons.join(", ")
        ))
    }
}

/// `12345` as `12,345`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, n])
    }

    #[test]
    fn a_free_slot_admits() {
        let o = Occupant {
            ip: ip(1),
            idle_since: None,
            leaving: false,
        };
        assert_eq!(admit([(0, o)], ip(2), 2, None), Admission::Admit);
        assert_eq!(admit::<usize>([], ip(2), 1, Some(1)), Admission::Admit);
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_gives_way() {
        let t = Instant::now();
        let busy = Occupant {
            ip: ip(1),
            idle_since: None,
            leaving: false,
        };
        let idle = |secs| Occupant {
            ip: ip(1),
            idle_since: Some(t + Duration::from_secs(secs)),
            leaving: false,
        };
        let all = [(0, busy), (1, idle(5)), (2, idle(2)), (3, idle(9))];
        assert_eq!(admit(all, ip(2), 4, None), Admission::Evict(2));
        // Every slot busy: refused.
        let busy_all = [(0, busy), (1, busy)];
        assert_eq!(
            admit(busy_all, ip(2), 2, None),
            Admission::Refuse(Refusal::Full)
        );
        // A connection already leaving holds no slot.
        let leaving = Occupant {
            leaving: true,
            ..busy
        };
        assert_eq!(
            admit([(0, busy), (1, leaving)], ip(2), 2, None),
            Admission::Admit
        );
    }

    #[test]
    fn the_per_address_cap_counts_one_address() {
        let t = Instant::now();
        let at = |n, idle: Option<u64>| Occupant {
            ip: ip(n),
            idle_since: idle.map(|s| t + Duration::from_secs(s)),
            leaving: false,
        };
        let conns = [(0, at(1, None)), (1, at(1, Some(3))), (2, at(2, Some(1)))];
        // Address 1 has two: its own idle one gives way, not address 2's.
        assert_eq!(admit(conns, ip(1), 100, Some(2)), Admission::Evict(1));
        let busy = [(0, at(1, None)), (1, at(1, None)), (2, at(2, Some(1)))];
        assert_eq!(
            admit(busy, ip(1), 100, Some(2)),
            Admission::Refuse(Refusal::PerIp)
        );
        // Another address is unaffected.
        assert_eq!(admit(busy, ip(3), 100, Some(2)), Admission::Admit);
    }

    #[test]
    fn refusals_are_summed_up_per_window() {
        let t = Instant::now();
        let mut log = RefusalLog::default();
        let first = log.refused(t, "10.0.0.1:5", Refusal::Full).expect("first");
        assert!(first.contains("10.0.0.1:5") && first.contains("max-connections"));
        for _ in 0..12_345 {
            assert_eq!(log.refused(t, "x", Refusal::Full), None);
        }
        log.refused(t, "x", Refusal::PerIp);
        assert_eq!(log.flush(t + Duration::from_secs(1)), None, "window open");
        let due = log.due().expect("window");
        let line = log.flush(due).expect("summary");
        assert_eq!(
            line,
            "refused 12,346 connections in the last 10 s (12,345 max-connections, \
             1 max-connections-per-ip: every slot had an open call)"
        );
        // A quiet window ends the aggregation; the next refusal logs at once.
        let due = log.due().expect("next window");
        assert_eq!(log.flush(due), None);
        assert_eq!(log.due(), None);
        assert!(log.refused(due, "y", Refusal::Full).is_some());
        assert_eq!(group(1_000_000), "1,000,000");
        assert_eq!(group(999), "999");
    }
}
