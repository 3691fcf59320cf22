//! The services the runtime-free server serves, written against the
//! service API ([`super::api`]) exactly as a user's service would be:
//! `echo.Echo` (all four RPC kinds), `grpc.health.v1.Health` and, with the
//! `reflection` feature, server reflection.
//!
//! The Echo behaviour and the status for each bad input come from
//! [`crate::service`], shared with the tokio flavour; this file only adapts
//! them to the core's call model.

#[cfg(feature = "reflection")]
use bytes::Bytes;

#[cfg(feature = "reflection")]
use super::api::{self, Cancel, Kind, RawCall};
use super::api::{Ctx, Next, Router, Status, Streaming};
use crate::proto::echo::echo_core::{self, EchoService};
use crate::proto::echo::{EchoManyRequest, EchoReply, EchoRequest};
use crate::proto::health::health_check_response::ServingStatus;
use crate::proto::health::health_core::{self, HealthService};
use crate::proto::health::{HealthCheckRequest, HealthCheckResponse};
use crate::proto::ECHO_SERVICE;
use crate::service::{self, Joiner, ManyPlan};
use crate::status::Code;

/// Every service of the runtime-free server; `max_message_size` bounds the
/// `ReplyJoined` reply as the tokio flavour does.
pub fn router(max_message_size: usize) -> Router {
    let mut router = Router::new();
    router.add(EchoService(Echo { max_message_size }));
    router.add(HealthService(Health {
        services: vec![ECHO_SERVICE],
    }));
    #[cfg(feature = "interop")]
    router.add(
        crate::proto::testing::test_service_core::TestServiceService(super::interop::TestService {
            max_message_size,
        }),
    );
    #[cfg(feature = "telemetry")]
    router.add(crate::proto::telemetry::telemetry_core::TelemetryService(
        super::telemetry::Telemetry {
            board: crate::service::telemetry::Board::system(),
        },
    ));
    #[cfg(feature = "reflection")]
    {
        use super::reflection::{Reflection as Index, V1, V1ALPHA};
        // Reflection describes every service registered above, and itself.
        let names: Vec<&'static str> = router.names().chain([V1, V1ALPHA]).collect();
        let index = Index::new(crate::proto::FILE_DESCRIPTOR_SET, names)
            .map(std::rc::Rc::new)
            .map_err(|e| e.to_string());
        for name in [V1, V1ALPHA] {
            router.add(Reflection {
                name,
                index: index.clone(),
            });
        }
    }
    router
}

/// `echo.Echo` for the runtime-free core.
#[derive(Debug)]
pub struct Echo {
    /// `ReplyJoined` fails RESOURCE_EXHAUSTED rather than build a reply
    /// larger than this.
    pub max_message_size: usize,
}

impl echo_core::Echo for Echo {
    fn reply(&self, _: &mut Ctx<'_>, request: EchoRequest) -> Result<EchoReply, Status> {
        Ok(service::reply(&request))
    }

    fn reply_many(
        &self,
        ctx: &mut Ctx<'_>,
        request: EchoManyRequest,
    ) -> Result<Box<dyn Streaming<(), EchoReply>>, Status> {
        let plan =
            service::many_plan(&request).map_err(|(code, message)| Status::new(code, message))?;
        Ok(Box::new(Many {
            message: request.message,
            plan,
            sent: 0,
            next_at: ctx.now(),
        }))
    }

    fn reply_joined(
        &self,
        _: &mut Ctx<'_>,
    ) -> Result<Box<dyn Streaming<EchoRequest, EchoReply>>, Status> {
        Ok(Box::new(Joined {
            joiner: Some(Joiner::default()),
            max: self.max_message_size,
            closed: false,
        }))
    }

    fn reply_each(
        &self,
        _: &mut Ctx<'_>,
    ) -> Result<Box<dyn Streaming<EchoRequest, EchoReply>>, Status> {
        Ok(Box::new(Each {
            reply: None,
            closed: false,
        }))
    }
}

/// `ReplyMany`: `plan.count` numbered replies, `plan.interval` apart, sent
/// from the call's timer (never blocking the loop).
struct Many {
    message: String,
    plan: ManyPlan,
    /// Replies sent so far.
    sent: u32,
    /// When the next reply is due.
    next_at: crate::h2::Timestamp,
}

impl Streaming<(), EchoReply> for Many {
    fn poll_next(&mut self, ctx: &mut Ctx<'_>) -> Next<EchoReply> {
        if self.sent >= self.plan.count {
            return Next::Done(Status::ok());
        }
        if ctx.now() < self.next_at {
            ctx.wake_at(self.next_at);
            return Next::Pending;
        }
        self.sent += 1;
        self.next_at = ctx.now().saturating_add(self.plan.interval);
        Next::Message(service::many_reply(
            &self.message,
            self.sent,
            self.plan.count,
        ))
    }
}

/// `ReplyJoined`: one reply once the client half-closes.
struct Joined {
    /// `None` once the reply went out.
    joiner: Option<Joiner>,
    max: usize,
    closed: bool,
}

impl Streaming<EchoRequest, EchoReply> for Joined {
    fn on_message(&mut self, _: &mut Ctx<'_>, request: EchoRequest) -> Result<(), Status> {
        if let Some(joiner) = &mut self.joiner {
            joiner.push(&request);
            if joiner.len() > self.max {
                return Err(Status::new(
                    Code::ResourceExhausted,
                    format!(
                        "joined reply is larger than the message limit of {} bytes",
                        self.max
                    ),
                ));
            }
        }
        Ok(())
    }

    fn on_half_close(&mut self, _: &mut Ctx<'_>) -> Result<(), Status> {
        self.closed = true;
        Ok(())
    }

    fn poll_next(&mut self, _: &mut Ctx<'_>) -> Next<EchoReply> {
        match (self.closed, self.joiner.take()) {
            (false, joiner) => {
                self.joiner = joiner;
                Next::Pending
            }
            (true, Some(joiner)) => Next::Message(joiner.finish()),
            (true, None) => Next::Done(Status::ok()),
        }
    }
}

/// `ReplyEach`: one reply per request message, as soon as it arrives. The
/// session hands over the next message only after this one's reply was
/// taken, so one slot is all the buffering there is.
struct Each {
    reply: Option<EchoReply>,
    closed: bool,
}

impl Streaming<EchoRequest, EchoReply> for Each {
    fn on_message(&mut self, _: &mut Ctx<'_>, request: EchoRequest) -> Result<(), Status> {
        self.reply = Some(service::reply(&request));
        Ok(())
    }

    fn on_half_close(&mut self, _: &mut Ctx<'_>) -> Result<(), Status> {
        self.closed = true;
        Ok(())
    }

    fn poll_next(&mut self, _: &mut Ctx<'_>) -> Next<EchoReply> {
        match self.reply.take() {
            Some(reply) => Next::Message(reply),
            None if self.closed => Next::Done(Status::ok()),
            None => Next::Pending,
        }
    }
}

/// `grpc.health.v1.Health`: "" (the whole server) and the listed services
/// are SERVING until the shutdown starts, NOT_SERVING after; any other name
/// is NOT_FOUND to `Check` (as tonic-health answers for a service never
/// registered) and SERVICE_UNKNOWN to `Watch`, which stays open (health.proto).
#[derive(Debug)]
pub struct Health {
    /// The services health is reported for.
    pub services: Vec<&'static str>,
}

impl Health {
    /// The status of `service`, or NOT_FOUND.
    fn status(&self, service: &str, ctx: &Ctx<'_>) -> Result<ServingStatus, Status> {
        if service.is_empty() || self.services.contains(&service) {
            Ok(if ctx.draining() {
                ServingStatus::NotServing
            } else {
                ServingStatus::Serving
            })
        } else {
            Err(Status::new(Code::NotFound, "service not registered"))
        }
    }
}

impl health_core::Health for Health {
    fn check(
        &self,
        ctx: &mut Ctx<'_>,
        request: HealthCheckRequest,
    ) -> Result<HealthCheckResponse, Status> {
        let status = self.status(&request.service, ctx)?;
        Ok(HealthCheckResponse {
            status: status as i32,
        })
    }

    fn watch(
        &self,
        ctx: &mut Ctx<'_>,
        request: HealthCheckRequest,
    ) -> Result<Box<dyn Streaming<(), HealthCheckResponse>>, Status> {
        // health.proto: Watch of an unknown service sends SERVICE_UNKNOWN and
        // keeps the call open (the service may appear later), unlike Check.
        let known = self.status(&request.service, ctx).is_ok();
        Ok(Box::new(Watch { sent: None, known }))
    }
}

/// `Health/Watch`: the current status at once, then each change; the only
/// change is the shutdown (NOT_SERVING), after which the call ends.
struct Watch {
    /// The status last sent.
    sent: Option<ServingStatus>,
    /// The service asked about is served (else SERVICE_UNKNOWN).
    known: bool,
}

impl Streaming<(), HealthCheckResponse> for Watch {
    fn poll_next(&mut self, ctx: &mut Ctx<'_>) -> Next<HealthCheckResponse> {
        let now = if !self.known {
            ServingStatus::ServiceUnknown
        } else if ctx.draining() {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        if self.sent != Some(now) {
            self.sent = Some(now);
            Next::Message(HealthCheckResponse { status: now as i32 })
        } else if ctx.draining() {
            Next::Done(Status::ok())
        } else {
            Next::Pending
        }
    }
}

/// Server reflection under one of its two names: a service over raw bytes,
/// answering from one index of the registered services (or, if the
/// compiled-in descriptor set could not be indexed, failing each call
/// with the reason).
#[cfg(feature = "reflection")]
struct Reflection {
    name: &'static str,
    index: Result<std::rc::Rc<super::reflection::Reflection>, String>,
}

#[cfg(feature = "reflection")]
impl api::Service for Reflection {
    fn name(&self) -> &'static str {
        self.name
    }

    fn methods(&self) -> &'static [(&'static str, Kind)] {
        &[("ServerReflectionInfo", Kind::Bidi)]
    }

    fn start(
        &self,
        method: usize,
        _: &mut Ctx<'_>,
        _: Option<Bytes>,
    ) -> Result<Box<dyn RawCall>, Status> {
        if method != 0 {
            return Err(api::unknown_method());
        }
        let index = self
            .index
            .clone()
            .map_err(|e| Status::new(crate::status::Code::Internal, e))?;
        Ok(Box::new(ReflectionCall {
            index,
            reply: None,
            closed: false,
        }))
    }
}

/// One reflection stream: each request answered in turn.
#[cfg(feature = "reflection")]
struct ReflectionCall {
    index: std::rc::Rc<super::reflection::Reflection>,
    reply: Option<Bytes>,
    closed: bool,
}

#[cfg(feature = "reflection")]
impl RawCall for ReflectionCall {
    fn on_message(&mut self, _: &mut Ctx<'_>, request: Bytes) -> Result<(), Status> {
        let request: super::reflection::pb::ServerReflectionRequest = api::decode(request)?;
        self.reply = Some(super::message::encode(&self.index.respond(request)));
        Ok(())
    }

    fn on_half_close(&mut self, _: &mut Ctx<'_>) -> Result<(), Status> {
        self.closed = true;
        Ok(())
    }

    fn poll_next(&mut self, _: &mut Ctx<'_>) -> Next<Bytes> {
        match self.reply.take() {
            Some(reply) => Next::Message(reply),
            None if self.closed => Next::Done(Status::ok()),
            None => Next::Pending,
        }
    }

    fn on_cancel(&mut self, _: Cancel) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::api::{self, Kind};

    #[test]
    fn routes() {
        let r = router(1024);
        assert_eq!(r.route(b"/echo.Echo/Reply"), Some((0, 0, Kind::Unary)));
        assert_eq!(
            r.route(b"/echo.Echo/ReplyMany"),
            Some((0, 1, Kind::ServerStreaming))
        );
        assert_eq!(
            r.route(b"/echo.Echo/ReplyJoined"),
            Some((0, 2, Kind::ClientStreaming))
        );
        assert_eq!(r.route(b"/echo.Echo/ReplyEach"), Some((0, 3, Kind::Bidi)));
        assert_eq!(
            r.route(b"/grpc.health.v1.Health/Watch"),
            Some((1, 1, Kind::ServerStreaming))
        );
        for unknown in [
            &b"/"[..],
            b"",
            b"/echo.Echo/Other",
            b"echo.Echo/Reply",
            b"/echo.Echo/Reply/x",
            b"/\xff/Reply",
        ] {
            assert_eq!(r.route(unknown), None);
        }
    }

    #[test]
    fn many_follows_its_timer() {
        let mut wake = None;
        let mut meta = api::ResponseMeta::default();
        let plan = ManyPlan {
            count: 2,
            interval: std::time::Duration::from_millis(100),
        };
        let mut many = Many {
            message: "m".into(),
            plan,
            sent: 0,
            next_at: crate::h2::Timestamp::ZERO,
        };
        let t = crate::h2::Timestamp::from_millis;
        let mut poll = |at, wake: &mut Option<_>| {
            many.poll_next(&mut Ctx::new(t(at), false, None, wake, &mut meta))
        };
        assert_eq!(
            poll(0, &mut wake),
            Next::Message(service::many_reply("m", 1, 2))
        );
        assert_eq!(poll(50, &mut wake), Next::Pending);
        assert_eq!(wake, Some(t(100)));
        assert_eq!(
            poll(100, &mut wake),
            Next::Message(service::many_reply("m", 2, 2))
        );
        assert_eq!(poll(100, &mut wake), Next::Done(Status::ok()));
    }
}
