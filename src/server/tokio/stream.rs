//! A response stream fed by a task through a one-message channel: the
//! producer waits while the client is slow to read (HTTP/2 flow control
//! reaches it through the full channel), and stops when the call is gone.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use tonic::codegen::tokio_stream::Stream;

/// The sending end a producing task holds.
pub(super) type Sender<T> = mpsc::Sender<Result<T, tonic::Status>>;

/// The response stream handed to tonic.
pub(super) struct ChannelStream<T>(mpsc::Receiver<Result<T, tonic::Status>>);

impl<T> Stream for ChannelStream<T> {
    type Item = Result<T, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// A channel holding one message: the producer runs at most one message
/// ahead of what the client has read.
pub(super) fn channel<T>() -> (Sender<T>, ChannelStream<T>) {
    let (tx, rx) = mpsc::channel(1);
    (tx, ChannelStream(rx))
}

/// Sleeps for `pause` unless the call ends first; returns false if it did.
pub(super) async fn pause<T>(tx: &Sender<T>, pause: std::time::Duration) -> bool {
    if pause.is_zero() {
        return !tx.is_closed();
    }
    tokio::select! {
        _ = tokio::time::sleep(pause) => true,
        _ = tx.closed() => false,
    }
}
