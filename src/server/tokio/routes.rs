//! The served services (Echo, health, reflection) and the table that picks
//! one by the service name in `:path`.

use std::convert::Infallible;
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::http::{Request, Response};
use tonic::codegen::tokio_stream::Stream;
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic_health::ServingStatus;

use super::call::LimitedBody;
use super::reflection::{ReflectionService, V1Alpha, V1};
use super::stream::{channel, pause, ChannelStream};
use crate::config::Config;
use crate::grpc::reflection::Reflection;
use crate::proto::echo::echo_server::{Echo, EchoServer};
use crate::proto::echo::{EchoManyRequest, EchoReply, EchoRequest};
use crate::server::ServeError;

/// Slack on top of `max_message_size` for the reply: the 10 bytes of
/// "You said: " plus at most one more length-prefix byte, rounded up.
const REPLY_SLACK: usize = 16;

/// The Echo service: every reply comes from [`crate::service`].
pub(super) struct EchoService {
    /// The message size limit: `ReplyJoined` fails RESOURCE_EXHAUSTED
    /// rather than build a reply larger than this.
    max_message_size: usize,
}

/// A stream of Echo replies produced by a task, one at a time.
pub(super) type ReplyStream = ChannelStream<EchoReply>;

/// `ReplyEach`: each request message, as it arrives, becomes its reply.
pub(super) struct EachStream(tonic::Streaming<EchoRequest>);

impl Stream for EachStream {
    type Item = Result<EchoReply, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0)
            .poll_next(cx)
            .map(|m| m.map(|r| r.map(|request| crate::service::reply(&request))))
    }
}

#[tonic::async_trait]
impl Echo for EchoService {
    async fn reply(
        &self,
        request: tonic::Request<EchoRequest>,
    ) -> Result<tonic::Response<EchoReply>, tonic::Status> {
        Ok(tonic::Response::new(crate::service::reply(
            request.get_ref(),
        )))
    }

    type ReplyManyStream = ReplyStream;

    async fn reply_many(
        &self,
        request: tonic::Request<EchoManyRequest>,
    ) -> Result<tonic::Response<ReplyStream>, tonic::Status> {
        let request = request.into_inner();
        let plan = crate::service::many_plan(&request).map_err(status)?;
        let (tx, stream) = channel();
        tokio::spawn(async move {
            for i in 1..=plan.count {
                if i > 1 && !pause(&tx, plan.interval).await {
                    return;
                }
                let reply = crate::service::many_reply(&request.message, i, plan.count);
                // The client went away (stream dropped): stop producing.
                if tx.send(Ok(reply)).await.is_err() {
                    return;
                }
            }
        });
        Ok(tonic::Response::new(stream))
    }

    async fn reply_joined(
        &self,
        request: tonic::Request<tonic::Streaming<EchoRequest>>,
    ) -> Result<tonic::Response<EchoReply>, tonic::Status> {
        let mut requests = request.into_inner();
        let mut joined = crate::service::Joiner::default();
        while let Some(request) = requests.message().await? {
            joined.push(&request);
            if joined.len() > self.max_message_size {
                return Err(tonic::Status::resource_exhausted(format!(
                    "joined reply is larger than the message limit of {} bytes",
                    self.max_message_size
                )));
            }
        }
        Ok(tonic::Response::new(joined.finish()))
    }

    type ReplyEachStream = EachStream;

    async fn reply_each(
        &self,
        request: tonic::Request<tonic::Streaming<EchoRequest>>,
    ) -> Result<tonic::Response<EachStream>, tonic::Status> {
        Ok(tonic::Response::new(EachStream(request.into_inner())))
    }
}

/// The tonic status for a shared-logic failure (the codes have the same numbers).
pub(super) fn status((code, message): (crate::status::Code, String)) -> tonic::Status {
    tonic::Status::new(tonic::Code::from_i32(code.as_i32()), message)
}

/// A routed call: the tonic service's response future, boxed.
pub(super) type RouteFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// One service's entry point, type-erased so the table can hold all of them.
type Handler = Box<dyn Fn(Request<LimitedBody>) -> RouteFuture + Send + Sync>;

/// The served services by fully-qualified name (`echo.Echo`, ...).
pub(super) struct Routes(Vec<(&'static str, Handler)>);

impl Routes {
    /// Adds a tonic service under its [`NamedService::NAME`].
    pub(super) fn add<S>(&mut self, service: S)
    where
        S: Service<Request<LimitedBody>, Response = Response<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let handler = move |request: Request<LimitedBody>| -> RouteFuture {
            let mut service = service.clone();
            Box::pin(async move {
                let Ok(()) = poll_fn(|cx| service.poll_ready(cx)).await;
                let Ok(response) = service.call(request).await;
                response
            })
        };
        self.0.push((S::NAME, Box::new(handler)));
    }

    /// Calls the service named in `:path` (`/package.Service/Method`), or
    /// answers UNIMPLEMENTED.
    pub(super) fn call(&self, request: Request<LimitedBody>) -> RouteFuture {
        let name = request
            .uri()
            .path()
            .strip_prefix('/')
            .and_then(|p| p.split_once('/'))
            .map(|(service, _method)| service);
        match self.0.iter().find(|(n, _)| Some(*n) == name) {
            Some((_, handler)) => handler(request),
            None => {
                let status = tonic::Status::unimplemented("unknown service");
                Box::pin(async move { status.into_http() })
            }
        }
    }
}

/// Builds every served service with the configured message limits; returns
/// the health reporter so shutdown can flip it to NOT_SERVING.
pub(super) async fn routes(
    config: &Config,
) -> Result<(tonic_health::server::HealthReporter, Routes), ServeError> {
    let decode = config.max_message_size;
    let encode = decode.saturating_add(REPLY_SLACK);
    let mut routes = Routes(Vec::new());

    routes.add(
        EchoServer::new(EchoService {
            max_message_size: decode,
        })
        .max_decoding_message_size(decode)
        .max_encoding_message_size(encode),
    );

    #[cfg(feature = "interop")]
    routes.add(super::interop::service(decode, encode));
    #[cfg(feature = "telemetry")]
    routes.add(super::telemetry::service(decode, encode));

    let (reporter, health) = tonic_health::server::health_reporter();
    // `tonic-health` starts "" (the whole server) as SERVING; echo.Echo is ours to set.
    reporter
        .set_service_status(EchoServer::<EchoService>::NAME, ServingStatus::Serving)
        .await;
    routes.add(
        health
            .max_decoding_message_size(decode)
            .max_encoding_message_size(encode),
    );

    // Reflection last, so it can list every service registered before it.
    let served = routes.0.iter().map(|(name, _)| *name);
    let index = Reflection::new(
        crate::proto::FILE_DESCRIPTOR_SET,
        served.chain([
            crate::grpc::reflection::V1,
            crate::grpc::reflection::V1ALPHA,
        ]),
    )
    .map_err(|e| ServeError::Io(io::Error::other(format!("reflection: {e}"))))?;
    let index = Arc::new(index);
    routes.add(ReflectionService::<V1>::new(Arc::clone(&index), decode));
    routes.add(ReflectionService::<V1Alpha>::new(index, decode));
    Ok((reporter, routes))
}
