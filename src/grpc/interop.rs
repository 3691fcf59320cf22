//! grpc's interop `grpc.testing.TestService` on the runtime-free core (cargo
//! feature `interop`): the generated `test_service_core::TestService` trait,
//! adapted to the shared logic in [`crate::service::interop`], written
//! against the service API exactly as a user's service would be. Streamed
//! responses follow an [`OutputPlan`] from the call's timer (`interval_us`),
//! never blocking the loop.

use std::collections::VecDeque;

use super::api::{Ctx, Next, Status, Streaming};
use crate::h2::Timestamp;
use crate::proto::testing::test_service_core;
use crate::proto::testing::{
    Empty, SimpleRequest, SimpleResponse, StreamingInputCallRequest, StreamingInputCallResponse,
    StreamingOutputCallRequest, StreamingOutputCallResponse,
};
use crate::service::interop::{self, Failure, HalfDuplex, InputSum, MetadataEcho, OutputPlan};
use crate::status::Code;

/// Plans a `FullDuplexCall` may have waiting (requests whose responses are
/// not all sent): a client that keeps asking without reading is refused
/// rather than queued without bound.
const MAX_PENDING_PLANS: usize = 64;

/// `grpc.testing.TestService`.
#[derive(Debug)]
pub struct TestService {
    /// Bounds each response and what `HalfDuplexCall` holds.
    pub max_message_size: usize,
}

/// A shared-logic failure as a status.
fn status((code, message): Failure) -> Status {
    Status::new(code, message)
}

/// Echoes `x-grpc-test-echo-initial` into the initial metadata and
/// `x-grpc-test-echo-trailing-bin` into the trailers (interop
/// `custom_metadata`).
fn echo_metadata(ctx: &mut Ctx<'_>) -> Result<(), Status> {
    let echo = MetadataEcho::from_request(|key| {
        if key.ends_with("-bin") {
            ctx.request_header_bin(key)
        } else {
            ctx.request_header(key).map(<[u8]>::to_vec)
        }
    });
    if let Some(value) = &echo.initial {
        ctx.set_header(interop::ECHO_INITIAL, value)?;
    }
    if let Some(value) = &echo.trailing_bin {
        ctx.set_trailer(interop::ECHO_TRAILING_BIN, value)?;
    }
    Ok(())
}

type Replies = Box<dyn Streaming<StreamingOutputCallRequest, StreamingOutputCallResponse>>;

impl test_service_core::TestService for TestService {
    fn empty_call(&self, ctx: &mut Ctx<'_>, request: Empty) -> Result<Empty, Status> {
        echo_metadata(ctx)?;
        Ok(interop::empty_call(&request))
    }

    fn unary_call(
        &self,
        ctx: &mut Ctx<'_>,
        request: SimpleRequest,
    ) -> Result<SimpleResponse, Status> {
        echo_metadata(ctx)?;
        interop::unary_call(&request, self.max_message_size).map_err(status)
    }

    fn streaming_output_call(
        &self,
        ctx: &mut Ctx<'_>,
        request: StreamingOutputCallRequest,
    ) -> Result<Box<dyn Streaming<(), StreamingOutputCallResponse>>, Status> {
        echo_metadata(ctx)?;
        let plan = interop::output_plan(&request, self.max_message_size).map_err(status)?;
        let mut out = Output::new(ctx.now());
        out.plans.push_back(plan);
        out.closed = true;
        Ok(Box::new(OutputOnly(out)))
    }

    fn streaming_input_call(
        &self,
        ctx: &mut Ctx<'_>,
    ) -> Result<Box<dyn Streaming<StreamingInputCallRequest, StreamingInputCallResponse>>, Status>
    {
        echo_metadata(ctx)?;
        Ok(Box::new(Input {
            sum: Some(InputSum::default()),
            closed: false,
        }))
    }

    fn full_duplex_call(&self, ctx: &mut Ctx<'_>) -> Result<Replies, Status> {
        echo_metadata(ctx)?;
        Ok(Box::new(FullDuplex {
            out: Output::new(ctx.now()),
            max_message_size: self.max_message_size,
        }))
    }

    fn half_duplex_call(&self, ctx: &mut Ctx<'_>) -> Result<Replies, Status> {
        echo_metadata(ctx)?;
        Ok(Box::new(HalfDuplexCall {
            held: Some(HalfDuplex::new(
                self.max_message_size,
                self.max_message_size,
            )),
            out: Output::new(ctx.now()),
        }))
    }

    fn unimplemented_method(&self, ctx: &mut Ctx<'_>, _: Empty) -> Result<Empty, Status> {
        echo_metadata(ctx)?;
        Err(Status::new(
            Code::Unimplemented,
            "grpc.testing.TestService/UnimplementedMethod is not implemented",
        ))
    }
}

/// Sends the responses of queued plans in order, each after its delay.
struct Output {
    plans: VecDeque<OutputPlan>,
    /// The next step of the front plan.
    step: usize,
    /// When the next step is due, once its delay started.
    due: Option<Timestamp>,
    /// No more plans will come: done once the queue is empty.
    closed: bool,
    /// When the last response went out (delays count from there).
    last: Timestamp,
}

impl Output {
    fn new(now: Timestamp) -> Output {
        Output {
            plans: VecDeque::new(),
            step: 0,
            due: None,
            closed: false,
            last: now,
        }
    }

    fn poll(&mut self, ctx: &mut Ctx<'_>) -> Next<StreamingOutputCallResponse> {
        // Bounded: each turn either returns or drops a finished plan.
        while let Some(plan) = self.plans.front() {
            let Some(step) = plan.steps.get(self.step).copied() else {
                self.step = 0;
                if let Some(failure) = self.plans.pop_front().and_then(|p| p.end_with) {
                    return Next::Done(status(failure));
                }
                continue;
            };
            let due = *self.due.get_or_insert(self.last.saturating_add(step.delay));
            if ctx.now() < due {
                ctx.wake_at(due);
                return Next::Pending;
            }
            self.due = None;
            self.step += 1;
            self.last = ctx.now();
            return Next::Message(interop::output_response(step.size));
        }
        if self.closed {
            Next::Done(Status::ok())
        } else {
            Next::Pending
        }
    }
}

/// `StreamingOutputCall`: one plan, no requests after the first.
struct OutputOnly(Output);

impl Streaming<(), StreamingOutputCallResponse> for OutputOnly {
    fn poll_next(&mut self, ctx: &mut Ctx<'_>) -> Next<StreamingOutputCallResponse> {
        self.0.poll(ctx)
    }
}

/// `StreamingInputCall`: the summed payload sizes once the client is done.
struct Input {
    sum: Option<InputSum>,
    closed: bool,
}

impl Streaming<StreamingInputCallRequest, StreamingInputCallResponse> for Input {
    fn on_message(
        &mut self,
        _: &mut Ctx<'_>,
        request: StreamingInputCallRequest,
    ) -> Result<(), Status> {
        match &mut self.sum {
            Some(sum) => sum.push(&request).map_err(status),
            None => Ok(()),
        }
    }

    fn on_half_close(&mut self, _: &mut Ctx<'_>) -> Result<(), Status> {
        self.closed = true;
        Ok(())
    }

    fn poll_next(&mut self, _: &mut Ctx<'_>) -> Next<StreamingInputCallResponse> {
        if !self.closed {
            return Next::Pending;
        }
        match self.sum.take() {
            Some(sum) => Next::Message(sum.finish()),
            None => Next::Done(Status::ok()),
        }
    }
}

/// `FullDuplexCall`: each request's responses, as requests arrive.
struct FullDuplex {
    out: Output,
    max_message_size: usize,
}

impl Streaming<StreamingOutputCallRequest, StreamingOutputCallResponse> for FullDuplex {
    fn on_message(
        &mut self,
        _: &mut Ctx<'_>,
        request: StreamingOutputCallRequest,
    ) -> Result<(), Status> {
        if self.out.plans.len() >= MAX_PENDING_PLANS {
            return Err(Status::new(
                Code::ResourceExhausted,
                format!("FullDuplexCall keeps at most {MAX_PENDING_PLANS} requests waiting"),
            ));
        }
        let plan = interop::output_plan(&request, self.max_message_size).map_err(status)?;
        self.out.plans.push_back(plan);
        Ok(())
    }

    fn on_half_close(&mut self, _: &mut Ctx<'_>) -> Result<(), Status> {
        self.out.closed = true;
        Ok(())
    }

    fn poll_next(&mut self, ctx: &mut Ctx<'_>) -> Next<StreamingOutputCallResponse> {
        self.out.poll(ctx)
    }
}

/// `HalfDuplexCall`: every request held until the half-close, then their
/// responses in order.
struct HalfDuplexCall {
    held: Option<HalfDuplex>,
    out: Output,
}

impl Streaming<StreamingOutputCallRequest, StreamingOutputCallResponse> for HalfDuplexCall {
    fn on_message(
        &mut self,
        _: &mut Ctx<'_>,
        request: StreamingOutputCallRequest,
    ) -> Result<(), Status> {
        match &mut self.held {
            Some(held) => held.push(&request).map_err(status),
            None => Ok(()),
        }
    }

    fn on_half_close(&mut self, ctx: &mut Ctx<'_>) -> Result<(), Status> {
        if let Some(held) = self.held.take() {
            self.out.plans.extend(held.finish());
        }
        self.out.closed = true;
        self.out.last = ctx.now();
        Ok(())
    }

    fn poll_next(&mut self, ctx: &mut Ctx<'_>) -> Next<StreamingOutputCallResponse> {
        if self.held.is_some() {
            return Next::Pending;
        }
        self.out.poll(ctx)
    }
}
