//! Flow-control windows (RFC 9113 §5.2, §6.9), for the connection and for
//! each stream, in both directions.

use super::frame::settings::MAX_WINDOW;

/// A window would overflow (2^31-1) or was overrun by the peer: the caller
/// answers with FLOW_CONTROL_ERROR on the stream or the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowError;

/// How much we may still send. Signed: a SETTINGS_INITIAL_WINDOW_SIZE decrease
/// can make a stream window negative (§6.9.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SendWindow(i64);

impl SendWindow {
    /// A window of `n` bytes.
    pub fn new(n: u32) -> SendWindow {
        SendWindow(i64::from(n))
    }

    /// Bytes that may be sent now (0 if the window is negative).
    pub fn available(&self) -> usize {
        usize::try_from(self.0.max(0)).unwrap_or(0)
    }

    /// Records `n` bytes sent; the caller sent no more than [`Self::available`].
    pub fn consume(&mut self, n: usize) {
        self.0 -= i64::try_from(n).unwrap_or(i64::MAX);
    }

    /// Adds credit from WINDOW_UPDATE (or a SETTINGS delta, which may be negative).
    /// `Err` when the window would pass 2^31-1.
    pub fn adjust(&mut self, delta: i64) -> Result<(), FlowError> {
        let n = self.0 + delta;
        // §6.9.1: "A sender MUST NOT allow a flow-control window to exceed 2^31-1 octets.
        // If a sender receives a WINDOW_UPDATE frame that causes a flow-control window to
        // exceed this maximum, it MUST terminate either the stream or the connection."
        if n > i64::from(MAX_WINDOW) {
            return Err(FlowError);
        }
        self.0 = n;
        Ok(())
    }
}

/// How much the peer may still send us, and how much consumed credit we have
/// not yet handed back with WINDOW_UPDATE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvWindow {
    /// Credit the peer still has.
    window: u32,
    /// The window we aim to keep open; updates are batched at half of it.
    target: u32,
    /// Bytes delivered (or discarded) but not yet credited back.
    pending: u32,
    /// Granted credit taken back ([`RecvWindow::revoke`]): released bytes
    /// pay it off before any is credited again.
    debt: u32,
}

impl RecvWindow {
    /// A window that starts at `initial` and is kept near `target`.
    pub fn new(initial: u32, target: u32) -> RecvWindow {
        RecvWindow {
            window: initial,
            target,
            pending: 0,
            debt: 0,
        }
    }

    /// Records `n` received bytes (a whole DATA payload, padding included).
    /// `Err` when the peer sent more than its credit.
    pub fn receive(&mut self, n: u32) -> Result<(), FlowError> {
        // §6.9.1: "A receiver MAY respond with a stream error or connection error of
        // type FLOW_CONTROL_ERROR if it is unable to accept a frame" beyond the window;
        // a sender "MUST NOT send a flow-controlled frame with a length that exceeds the
        // space available".
        self.window = self.window.checked_sub(n).ok_or(FlowError)?;
        Ok(())
    }

    /// Hands back `n` consumed bytes. Returns the WINDOW_UPDATE increment to send
    /// once at least half the target is waiting, else `None`.
    pub fn release(&mut self, n: u32) -> Option<u32> {
        let pay = self.debt.min(n);
        self.debt -= pay;
        self.pending = self.pending.saturating_add(n - pay);
        let open = u64::from(self.window) + u64::from(self.pending);
        if self.pending == 0
            || (self.pending < self.target / 2 && open >= u64::from(self.target / 2))
        {
            return None;
        }
        let inc = self.pending.min(MAX_WINDOW - self.window.min(MAX_WINDOW));
        self.pending -= inc;
        self.window += inc;
        (inc > 0).then_some(inc)
    }

    /// Credit the peer still has.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// Extra credit granted now (beyond the target, against a memory
    /// reservation): returns the WINDOW_UPDATE increment to send.
    pub fn grant(&mut self, n: u32) -> Option<u32> {
        let inc = n.min(MAX_WINDOW - self.window.min(MAX_WINDOW));
        self.window += inc;
        (inc > 0).then_some(inc)
    }

    /// Takes back `n` bytes of granted credit the peer has not used (the
    /// reservation behind it is gone): that many released bytes will not be
    /// credited again, so the window returns to its target.
    pub fn revoke(&mut self, n: u32) {
        let take = self.pending.min(n);
        self.pending -= take;
        self.debt = self.debt.saturating_add(n - take);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_window_overflow_and_negative() {
        let mut w = SendWindow::new(10);
        w.consume(4);
        assert_eq!(w.available(), 6);
        assert_eq!(w.adjust(-20), Ok(()));
        assert_eq!(w.available(), 0);
        assert_eq!(w.adjust(i64::from(MAX_WINDOW)), Ok(()));
        let mut w = SendWindow::new(MAX_WINDOW);
        assert_eq!(w.adjust(1), Err(FlowError));
        assert_eq!(w.available(), MAX_WINDOW as usize);
    }

    #[test]
    fn recv_window_batches_updates() {
        let mut w = RecvWindow::new(100, 100);
        assert_eq!(w.receive(30), Ok(()));
        assert_eq!(w.release(30), None); // 30 < 50 pending, window 70 still open
        assert_eq!(w.receive(30), Ok(()));
        assert_eq!(w.release(30), Some(60));
        assert_eq!(w.window(), 100);
        assert_eq!(w.receive(101), Err(FlowError));
        assert_eq!(w.receive(100), Ok(()));
        assert_eq!(w.receive(1), Err(FlowError));
        // A nearly closed window is reopened even for small releases.
        assert_eq!(w.release(10), Some(10));
        // Grants go out at once, never past 2^31-1.
        assert_eq!(w.grant(1000), Some(1000));
        assert_eq!(w.window(), 1010);
        assert_eq!(w.grant(MAX_WINDOW), Some(MAX_WINDOW - 1010));
        assert_eq!(w.grant(1), None);
        // Revoked credit is paid off by later releases before any goes back.
        let mut w = RecvWindow::new(100, 100);
        assert_eq!(w.grant(50), Some(50));
        w.receive(150).unwrap();
        w.revoke(50);
        assert_eq!(w.release(60), Some(10));
        assert_eq!(w.release(90), Some(90));
        assert_eq!(w.window(), 100);
    }
}
