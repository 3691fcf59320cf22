//! The board telemetry service on tonic (cargo feature `telemetry`):
//! tonic's generated `Telemetry` trait, adapted to the shared logic in
//! [`crate::service::telemetry`]. This file keeps the timer and reads the
//! wall clock; the request rules and the readings come from the shared module.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::MissedTickBehavior;

use super::routes::status;
use super::stream::{channel, ChannelStream};
use crate::proto::telemetry::telemetry_server::{self, TelemetryServer};
use crate::proto::telemetry::{Reading, WatchRequest};
use crate::service::telemetry::{self, Board};

/// The served Telemetry service, reading the running system.
pub(super) fn service(decode: usize, encode: usize) -> TelemetryServer<TelemetryService> {
    TelemetryServer::new(TelemetryService {
        board: Board::system(),
    })
    .max_decoding_message_size(decode)
    .max_encoding_message_size(encode)
}

/// The Telemetry implementation.
pub(super) struct TelemetryService {
    board: Board,
}

#[tonic::async_trait]
impl telemetry_server::Telemetry for TelemetryService {
    type WatchStream = ChannelStream<Reading>;

    async fn watch(
        &self,
        request: tonic::Request<WatchRequest>,
    ) -> Result<tonic::Response<ChannelStream<Reading>>, tonic::Status> {
        let plan = telemetry::watch_plan(request.get_ref()).map_err(status)?;
        let board = self.board.clone();
        let (tx, stream) = channel();
        tokio::spawn(async move {
            // The first tick is immediate; a reader slower than the interval
            // gets the next reading when it catches up, not a burst.
            let mut ticks = tokio::time::interval(plan.interval);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut seq = 1;
            // Ends at `count`, or (count 0) when the client cancels, the
            // deadline passes or the connection goes.
            while !plan.is_done(seq) {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = tx.closed() => return,
                }
                let reading = board.sample(seq, unix_time_ms());
                if tx.send(Ok(reading)).await.is_err() {
                    return;
                }
                seq += 1;
            }
        });
        Ok(tonic::Response::new(stream))
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn unix_time_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
