//! Event rates that decay over a window (a leaky bucket), for the limits
//! that must stop floods without ever cutting off a long, honest connection.
//!
//! A [`Rate`] allows `limit` events per `window`, sustained forever, with a
//! burst of up to `limit` at once. Each event fills the bucket by one; the
//! bucket drains continuously at `limit` per `window`; an event that finds
//! the bucket over `limit` trips it. A lifetime count would instead cut off
//! every busy connection sooner or later.
//!
//! Sans-IO: the caller passes the time of each event (the driver's clock);
//! nothing here reads a clock. Integer arithmetic only.

use std::time::Duration;

use super::Timestamp;

/// A decaying event count. See the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Bucket content, in event·milliseconds: one event is `window_ms`.
    level: u64,
    /// When `level` was last brought up to date.
    at: Option<Timestamp>,
    /// Events allowed per window (the bucket size).
    limit: u32,
    /// The window in milliseconds (at least 1; up to 49 days).
    window_ms: u32,
}

impl Rate {
    /// A rate of at most `limit` events per `window` (a window beyond
    /// `u32::MAX` ms, about 49 days, is cut to that).
    pub fn new(limit: u32, window: Duration) -> Rate {
        let window_ms = u32::try_from(window.as_millis()).unwrap_or(u32::MAX).max(1);
        Rate {
            level: 0,
            at: None,
            limit,
            window_ms,
        }
    }

    fn unit(&self) -> u64 {
        u64::from(self.window_ms)
    }

    /// Drains what leaked out since the last update.
    fn decay(&mut self, now: Timestamp) {
        let Some(at) = self.at else {
            self.at = Some(now);
            return;
        };
        // A driver clock that went backwards drains nothing.
        let elapsed = now.saturating_sub(at);
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.level = self
            .level
            .saturating_sub(ms.saturating_mul(u64::from(self.limit)));
        // Whole milliseconds only: the remainder counts at the next update.
        self.at = at.checked_add(Duration::from_millis(ms)).or(Some(now));
    }

    /// Records one event at `now`; true when it goes over the limit.
    pub fn record(&mut self, now: Timestamp) -> bool {
        self.decay(now);
        self.level = self.level.saturating_add(self.unit());
        self.level > u64::from(self.limit) * self.unit()
    }

    /// Takes one event back (something the peer did earns forgiveness).
    pub fn forgive(&mut self, now: Timestamp) {
        self.decay(now);
        self.level = self.level.saturating_sub(self.unit());
    }

    /// Events currently counted at `now` (rounded up), for tests and logs.
    pub fn count(&mut self, now: Timestamp) -> u64 {
        self.decay(now);
        self.level.div_ceil(self.unit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn burst_up_to_the_limit_then_trips() {
        let t = Duration::from_secs(1_000);
        let mut r = Rate::new(3, 10 * SEC);
        assert!(!r.record(t));
        assert!(!r.record(t));
        assert!(!r.record(t));
        assert!(r.record(t), "the fourth event in one instant is over");
    }

    #[test]
    fn decays_so_a_sustained_rate_at_the_limit_never_trips() {
        let t = Duration::from_secs(1_000);
        let mut r = Rate::new(10, 10 * SEC);
        // One event per second, exactly the allowed rate, for a long time.
        for i in 0..100_000u64 {
            assert!(!r.record(t + Duration::from_secs(i)), "tripped at {i}");
        }
        // A lifetime count of 100,000 would be far over; the rate is not.
        assert!(r.count(t + Duration::from_secs(100_000)) <= 10);
        // Faster than allowed trips within one window.
        let mut r = Rate::new(10, 10 * SEC);
        let tripped = (0..40u64).any(|i| r.record(t + Duration::from_millis(500 * i)));
        assert!(tripped, "two per second against one allowed");
    }

    #[test]
    fn forgiveness_and_full_drain() {
        let t = Duration::from_secs(1_000);
        let mut r = Rate::new(2, SEC);
        assert!(!r.record(t));
        assert!(!r.record(t));
        r.forgive(t);
        assert!(!r.record(t), "one was forgiven");
        assert!(r.record(t));
        assert_eq!(r.count(t + 10 * SEC), 0, "drained after a few windows");
        assert_eq!(r.count(t), 0, "a clock going backwards changes nothing");
        r.forgive(t);
        assert_eq!(r.count(t), 0, "never below zero");
    }

    #[test]
    fn sub_millisecond_steps_still_decay() {
        let t = Duration::from_secs(1_000);
        let mut r = Rate::new(1, Duration::from_millis(10));
        assert!(!r.record(t));
        // 100 steps of 0.2 ms = 20 ms: two windows, the bucket is empty.
        let later = (1..=100u32).fold(t, |_, i| t + Duration::from_micros(200) * i);
        r.count(t + Duration::from_micros(100));
        assert_eq!(r.count(later), 0);
    }
}
