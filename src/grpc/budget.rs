//! The memory budget (`--memory-budget`): one bound on the request message
//! data buffered across all connections and calls, and how the flow-control
//! windows derive from it.
//!
//! HTTP/2 flow control is the backpressure. Every connection gets a fixed
//! receive window ([`Plan::window`], per stream and for the whole
//! connection), so without anything else a connection can hold at most one
//! window of unconsumed request data, and all of them together
//! `max_connections` windows. Credit for bytes still held (a message not yet
//! complete) is only handed back to the client against a reservation from
//! the shared [`Budget`] pool (the rest of the budget): a message larger
//! than a window reserves what it still needs; when the pool cannot cover it
//! the call fails with RESOURCE_EXHAUSTED instead of buffering it.
//!
//! No clock, no I/O: a pool of bytes shared by the sessions of one server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The smallest receive window we advertise: the RFC's initial window
/// (65,535, RFC 9113 §6.9.2), so a client that sends before it has seen our
/// SETTINGS never overruns it.
pub const MIN_WINDOW: usize = 65_535;
/// The largest receive window the budget hands out: enough for LAN speed.
pub const MAX_WINDOW: usize = 256 * 1024;

/// How a memory budget is split, decided once at startup from the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The whole budget in bytes.
    pub budget: usize,
    /// Receive window per stream and per connection.
    pub window: usize,
    /// Bytes every connection may hold through its window alone, together.
    pub windows: usize,
    /// The shared pool for messages larger than a window.
    pub pool: usize,
}

impl Plan {
    /// Splits `budget` for `max_connections` connections accepting messages
    /// of up to `max_message_size` bytes: half of it (at most) for the
    /// windows, the rest for the pool, which must hold at least one message
    /// of the largest size. `Err` is the one line saying which option to change.
    pub fn new(
        budget: usize,
        max_connections: usize,
        max_message_size: usize,
    ) -> Result<Plan, String> {
        let connections = max_connections.max(1);
        let window = (budget / 2 / connections).clamp(MIN_WINDOW, MAX_WINDOW);
        let windows = window.saturating_mul(connections);
        let pool = budget.saturating_sub(windows);
        // (+ the 5-byte gRPC message prefix)
        let message = max_message_size.saturating_add(5);
        if windows > budget || pool < message {
            let need = windows.saturating_add(message);
            return Err(format!(
                "--memory-budget {budget} cannot hold {connections} connections x {window} bytes \
                 of flow-control window plus one {max_message_size}-byte message (needs {need}): \
                 raise --memory-budget, or lower --max-connections or --max-message-size"
            ));
        }
        Ok(Plan {
            budget,
            window,
            windows,
            pool,
        })
    }

    /// The worst case, for the startup log.
    pub fn summary(&self) -> String {
        format!(
            "memory budget {} bytes: {} x {}-byte windows = {} + {} shared by larger messages",
            self.budget,
            self.windows / self.window.max(1),
            self.window,
            self.windows,
            self.pool
        )
    }
}

/// The shared pool: bytes reserved by calls for message data beyond their
/// window. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Budget {
    inner: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    capacity: usize,
    used: AtomicUsize,
}

impl Budget {
    /// A pool of `capacity` bytes.
    pub fn new(capacity: usize) -> Budget {
        Budget {
            inner: Arc::new(Pool {
                capacity,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// Reserves `n` bytes if they fit; false (nothing reserved) if not.
    pub fn try_reserve(&self, n: usize) -> bool {
        self.reserve_within(n, self.inner.capacity)
    }

    /// Reserves `n` bytes for a message larger than a window, which may use
    /// only three quarters of the pool: the last quarter stays for small
    /// messages, so a flood of huge announced messages cannot fail every
    /// honest small call.
    pub fn try_reserve_large(&self, n: usize) -> bool {
        let capacity = self.inner.capacity;
        self.reserve_within(n, capacity - capacity / 4)
    }

    fn reserve_within(&self, n: usize, limit: usize) -> bool {
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= limit)
            })
            .is_ok()
    }

    /// Gives back `n` reserved bytes.
    pub fn release(&self, n: usize) {
        let _ = self
            .inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn the_default_limits_fit_the_default_budget() {
        let plan = Plan::new(32 * MIB, 256, 4 * MIB).expect("fits");
        assert_eq!(plan.window, 64 * 1024);
        assert_eq!(plan.windows + plan.pool, 32 * MIB);
        assert!(plan.pool >= 4 * MIB + 5);
        assert!(plan.summary().contains("256 x 65536-byte windows"));
        // Few connections: larger windows, capped.
        assert_eq!(Plan::new(32 * MIB, 4, 4 * MIB).unwrap().window, MAX_WINDOW);
    }

    #[test]
    fn limits_that_cannot_fit_name_the_options() {
        let e = Plan::new(8 * MIB, 256, 4 * MIB).unwrap_err();
        assert!(e.starts_with("--memory-budget 8388608 cannot hold"), "{e}");
        assert!(e.contains("raise --memory-budget"), "{e}");
        assert!(Plan::new(MIB, 10_000, 1024).is_err());
    }

    #[test]
    fn the_pool_is_bounded_and_shared() {
        let a = Budget::new(100);
        let b = a.clone();
        assert!(a.try_reserve(60));
        assert!(!b.try_reserve(41));
        assert!(b.try_reserve(40));
        assert_eq!(a.used(), 100);
        a.release(60);
        assert!(b.try_reserve(60));
        b.release(1000);
        assert_eq!(a.used(), 0);
        // Large messages leave the last quarter to small ones.
        assert!(a.try_reserve_large(70));
        assert!(!a.try_reserve_large(10));
        assert!(a.try_reserve(30));
    }
}
