//! The board telemetry service on the runtime-free core (cargo feature
//! `telemetry`): the generated `telemetry_core::Telemetry` trait, adapted to
//! the shared logic in [`crate::service::telemetry`], written against the
//! service API as a user's service would be. A `Watch` call is a timer-driven
//! producer: it is polled when its next reading is due and the client has
//! room for it, never blocking the loop. The wall clock is read here, for the
//! readings' timestamps only; the schedule runs on the driver's clock.

use std::time::{SystemTime, UNIX_EPOCH};

use super::api::{Ctx, Next, Status, Streaming};
use crate::h2::Timestamp;
use crate::proto::telemetry::telemetry_core;
use crate::proto::telemetry::{Reading, WatchRequest};
use crate::service::telemetry::{self, Board, WatchPlan};

/// `telemetry.Telemetry`, reading `board`.
#[derive(Debug)]
pub struct Telemetry {
    /// Where the readings come from.
    pub board: Board,
}

impl telemetry_core::Telemetry for Telemetry {
    fn watch(
        &self,
        ctx: &mut Ctx<'_>,
        request: WatchRequest,
    ) -> Result<Box<dyn Streaming<(), Reading>>, Status> {
        let plan = telemetry::watch_plan(&request).map_err(|(code, m)| Status::new(code, m))?;
        Ok(Box::new(Watch {
            board: self.board.clone(),
            plan,
            seq: 1,
            next_at: ctx.now(),
        }))
    }
}

/// One `Watch` call: the next reading's number and when it is due.
struct Watch {
    board: Board,
    plan: WatchPlan,
    seq: u64,
    next_at: Timestamp,
}

impl Streaming<(), Reading> for Watch {
    fn poll_next(&mut self, ctx: &mut Ctx<'_>) -> Next<Reading> {
        if self.plan.is_done(self.seq) {
            return Next::Done(Status::ok());
        }
        if ctx.now() < self.next_at {
            ctx.wake_at(self.next_at);
            return Next::Pending;
        }
        // A reader slower than the interval gets the next reading when it
        // catches up, not a burst (the schedule restarts from now).
        self.next_at = ctx.now().saturating_add(self.plan.interval);
        let reading = self.board.sample(self.seq, unix_time_ms());
        self.seq += 1;
        Next::Message(reading)
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn unix_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
